package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"
)

// localFileHeader and localFileSuffix are the exporter's (package exporter:
// LocalFileHeader, LocalFileSocketSuffix): the metadata key naming a
// handed-over file's token, and the suffix of the socket that takes files.
const (
	localFileHeader = "jumpwire-local-file"
	localFileSuffix = ".fd"
)

// StreamFile opens a byte stream to method of the driver with the given uuid, as [Client.Stream]
// does, whose data (what the client sends) is the content of f, a regular file open for reading
// at offset 0.
//
// When the exporter runs on this machine (it was dialled over a unix socket) and takes files, f's
// descriptor is handed over to it and the exporter (or the driver) reads the file itself: local is
// true, and the caller writes nothing and only half-closes the stream ([Stream.CloseWrite]); it may
// close f once the stream is open. Otherwise (TCP, an exporter that does not take files, a refusal)
// local is false and the caller writes f's bytes, as on any stream.
func (c *Client) StreamFile(ctx context.Context, uuid, method string, f *os.File) (s *Stream, local bool, err error) {
	if token, ok := c.handOver(ctx, f); ok {
		op := c.opName(uuid, method)
		req, err := json.Marshal(streamRequest{Kind: "driver", UUID: uuid, Method: method})
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", op, err)
		}
		s, _, err := c.open(metadata.AppendToOutgoingContext(ctx, localFileHeader, token), op, req)
		return s, err == nil, err
	}
	s, err = c.Stream(ctx, uuid, method)
	return s, false, err
}

// handOver passes f's descriptor, with a fresh token, to the exporter's
// local file socket, and says whether the exporter took it. Any failure
// (no such socket, a refusal) is a quiet no: the caller streams.
func (c *Client) handOver(ctx context.Context, f *os.File) (token string, ok bool) {
	if c.sock == "" {
		return "", false
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", false
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.sock+localFileSuffix)
	if err != nil {
		return "", false
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	_ = uc.SetDeadline(time.Now().Add(10 * time.Second))
	var b [16]byte
	_, _ = rand.Read(b[:])
	token = hex.EncodeToString(b[:])
	if err := sendFD(uc, []byte(token), f); err != nil {
		return "", false
	}
	line, err := bufio.NewReader(uc).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ok" {
		return "", false
	}
	return token, true
}
