package exporter

import (
	"errors"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// LocalFileSocketSuffix names the sibling of an exporter's unix socket on
// which a client on the same machine hands over an open file (SCM_RIGHTS)
// instead of streaming its bytes: "<socket>.fd".
const LocalFileSocketSuffix = ".fd"

// LocalFileHeader is the metadata key of a client's byte stream whose data
// is a file it handed over on the local file socket: its value is the
// token it sent with the file. The client then sends no data, only its
// half-close.
const LocalFileHeader = "jumpwire-local-file"

// localFileTTL is how long a handed-over file waits for the stream that
// names it before it is closed.
const localFileTTL = time.Minute

// maxTokenLen bounds the token a client sends with a file.
const maxTokenLen = 64

var tokenPattern = regexp.MustCompile(`^[0-9A-Za-z-]{16,64}$`)

// localFiles holds the files clients handed over, by token, until a
// stream claims them.
type localFiles struct {
	mu    sync.Mutex
	files map[string]*os.File
	// taken counts the streams whose data came from a handed-over file, for
	// tests and the log.
	taken atomic.Int64
}

func (l *localFiles) put(token string, f *os.File) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.files == nil {
		l.files = map[string]*os.File{}
	}
	if _, dup := l.files[token]; dup {
		return errors.New("the token is already in use")
	}
	l.files[token] = f
	time.AfterFunc(localFileTTL, func() {
		if f := l.take(token); f != nil {
			f.Close()
		}
	})
	return nil
}

// take removes and returns the file of token, or nil.
func (l *localFiles) take(token string) *os.File {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.files[token]
	delete(l.files, token)
	return f
}
