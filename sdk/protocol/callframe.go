package protocol

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/proto"
)

// callFrameHeader is the length prefix of a CallFrame on a call socket.
const callFrameHeader = 4

// AppendCallFrame appends f to b as it travels on a plugin's call socket:
// its length (4 bytes, big-endian), then the message.
func AppendCallFrame(b []byte, f *pluginv1.CallFrame) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := proto.MarshalOptions{}.MarshalAppend(b, f)
	if err != nil {
		return b[:start], fmt.Errorf("call frame: %w", err)
	}
	n := len(b) - start - callFrameHeader
	if n > MaxMessageSize {
		return b[:start], fmt.Errorf("call frame: %d bytes is more than the largest message (%d)", n, MaxMessageSize)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

// ReadCallFrame reads one CallFrame from a call socket. buf is scratch
// space it may grow and return for the next read. A frame longer than the
// largest message, or one that does not decode, is an error: the stream
// cannot be trusted past it.
func ReadCallFrame(r io.Reader, buf []byte) (*pluginv1.CallFrame, []byte, error) {
	var head [callFrameHeader]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, buf, err
	}
	n := int(binary.BigEndian.Uint32(head[:]))
	if n > MaxMessageSize {
		return nil, buf, fmt.Errorf("call frame of %d bytes is more than the largest message (%d)", n, MaxMessageSize)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, buf, fmt.Errorf("call frame: %w", err)
	}
	f := &pluginv1.CallFrame{}
	if err := proto.Unmarshal(buf, f); err != nil {
		return nil, buf, fmt.Errorf("call frame: %w", err)
	}
	return f, buf, nil
}
