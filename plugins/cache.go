package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/encoding/protojson"
)

// CacheDir is where catalogs remember what each binary content provides:
// $XDG_CACHE_HOME/jumpwire/plugins, by default ~/.cache/jumpwire/plugins;
// "" when there is no cache directory.
func CacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "jumpwire", "plugins")
}

// knowledge is what a catalog has learned: the sha256 of each file (by its
// path, size, times and inode) and what each content provides.
type knowledge struct {
	mu     sync.Mutex
	hashes map[string]hashed    // by path
	infos  map[string]*learning // by sha256
	reads  int                  // files hashed, for tests
}

type hashed struct {
	key fileKey
	sum string
}

// learning is one content being described; done is closed when it is.
type learning struct {
	done chan struct{}
	info *pluginv1.DescribeResponse
	err  error
}

func (k *knowledge) init() {
	k.hashes = map[string]hashed{}
	k.infos = map[string]*learning{}
}

// sum returns the hex sha256 of the executable at path. It reads the file
// only when its size, times or inode changed since it was last hashed.
func (k *knowledge) sum(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fileError(path, err)
	}
	switch {
	case fi.IsDir():
		return "", fmt.Errorf("%s is a directory, not a plugin binary", path)
	case fi.Mode()&0o111 == 0:
		return "", fmt.Errorf("%s is not executable (check its mode: chmod +x)", path)
	}
	k.mu.Lock()
	h, ok := k.hashes[path]
	k.mu.Unlock()
	if ok && h.key == keyOf(fi) {
		return h.sum, nil
	}
	sum, key, err := hashFile(context.Background(), path)
	if err != nil {
		return "", err
	}
	k.mu.Lock()
	k.hashes[path] = hashed{key: key, sum: sum}
	k.reads++
	k.mu.Unlock()
	return sum, nil
}

// fileError says what is wrong with a plugin binary that cannot be opened.
func fileError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s cannot be read (check its mode: chmod +r; its sha256 is checked before it runs)", path)
	}
	return err
}

// hashFile streams the file at path through sha256. It returns the key of
// the file it read, which did not change while it was read.
func hashFile(ctx context.Context, path string) (string, fileKey, error) {
	for range 3 {
		f, err := os.Open(path)
		if err != nil {
			return "", fileKey{}, fileError(path, err)
		}
		before, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return "", fileKey{}, err
		}
		h := sha256.New()
		_, err = io.Copy(h, ctxReader{ctx, f})
		after, serr := f.Stat()
		_ = f.Close()
		if err != nil {
			return "", fileKey{}, fmt.Errorf("read %s: %w", path, err)
		}
		if serr == nil && keyOf(before) == keyOf(after) {
			return hex.EncodeToString(h.Sum(nil)), keyOf(after), nil
		}
	}
	return "", fileKey{}, fmt.Errorf("%s keeps changing while it is read; try again once it is written", path)
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// info returns what the content sum (found at path) provides: from memory,
// from the cache directory, or by describing the binary. Concurrent asks for
// one content describe it once.
func (k *knowledge) info(ctx context.Context, c *Catalog, path, sum string) (*pluginv1.DescribeResponse, error) {
	k.mu.Lock()
	l, ok := k.infos[sum]
	if !ok {
		l = &learning{done: make(chan struct{})}
		k.infos[sum] = l
	}
	k.mu.Unlock()
	if ok {
		select {
		case <-l.done:
			return l.info, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l.info, l.err = c.learn(ctx, path, sum)
	if l.err != nil { // not remembered: the next ask tries again
		k.mu.Lock()
		delete(k.infos, sum)
		k.mu.Unlock()
	}
	close(l.done)
	return l.info, l.err
}

// learn reads what content sum provides from the cache directory, or asks
// the binary and writes the answer there.
func (c *Catalog) learn(ctx context.Context, path, sum string) (*pluginv1.DescribeResponse, error) {
	if info := readCache(c.cacheDir, sum); info != nil {
		return info, nil
	}
	info, err := c.describe(ctx, path)
	if err != nil {
		return nil, err
	}
	// The answer belongs to the content only if the file did not change
	// while it was asked.
	if now, err := c.known.sum(path); err != nil || now != sum {
		return nil, fmt.Errorf("%s changed while it was being described; try again", path)
	}
	writeCache(c.cacheDir, sum, info)
	return info, nil
}

// cacheFile is where the answer for content sum is kept.
func cacheFile(dir, sum string) string { return filepath.Join(dir, sum+".json") }

// readCache returns the cached answer for content sum, or nil.
func readCache(dir, sum string) *pluginv1.DescribeResponse {
	if dir == "" {
		return nil
	}
	data, err := os.ReadFile(cacheFile(dir, sum))
	if err != nil {
		return nil
	}
	info := &pluginv1.DescribeResponse{}
	if (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, info) != nil {
		return nil // unreadable: described again and overwritten
	}
	return info
}

// writeCache records the answer for content sum, if it can: a cache that
// cannot be written is no cache.
func writeCache(dir, sum string, info *pluginv1.DescribeResponse) {
	if dir == "" {
		return
	}
	data, err := protojson.MarshalOptions{Multiline: true}.Marshal(info)
	if err != nil || os.MkdirAll(dir, 0o700) != nil {
		return
	}
	f, err := os.CreateTemp(dir, sum+".*.tmp")
	if err != nil {
		return
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), cacheFile(dir, sum))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
}
