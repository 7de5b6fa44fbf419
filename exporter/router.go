package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jumpwire-dev/jumpwire/host"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// RequestHeader is the metadata key naming what a router stream connects to.
const RequestHeader = "request"

// streamRequest is the JSON value of the request header.
type streamRequest struct {
	Kind                string  `json:"kind"`
	UUID                string  `json:"uuid"`
	Method              string  `json:"method"`
	XJmpContentEncoding *string `json:"x_jmp_content_encoding"`
}

// parseStreamRequest decodes the request header strictly.
func parseStreamRequest(md metadata.MD) (*streamRequest, error) {
	v := md.Get(RequestHeader)
	if len(v) != 1 {
		return nil, status.Errorf(codes.InvalidArgument,
			`a stream needs exactly one %q metadata value, e.g. {"kind":"driver","uuid":"...","method":"connect"}; got %d`, RequestHeader, len(v))
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(v[0])))
	dec.DisallowUnknownFields()
	var r streamRequest
	if err := dec.Decode(&r); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "stream request header %q: %v", truncate(v[0], maxEcho), err)
	}
	if dec.More() {
		return nil, status.Errorf(codes.InvalidArgument, "stream request header %q: trailing data after the JSON object", truncate(v[0], maxEcho))
	}
	switch {
	case r.Kind == "resource":
		if r.UUID == "" || r.Method != "" {
			return nil, status.Error(codes.InvalidArgument, "stream request header: a resource stream needs uuid (of the driver it is for) and no method")
		}
		if e := r.XJmpContentEncoding; e != nil && !knownEncoding(*e) {
			return nil, status.Errorf(codes.InvalidArgument,
				"stream request header: content encoding %q is not supported; send gzip, xz, bz2, zstd or null (plain bytes)", truncate(*e, maxEcho))
		}
	case r.Kind != "driver":
		return nil, status.Errorf(codes.InvalidArgument, `stream request header: kind %q is not "driver" or "resource"`, truncate(r.Kind, maxEcho))
	case r.UUID == "" || r.Method == "":
		return nil, status.Error(codes.InvalidArgument, "stream request header: a driver stream needs uuid and method")
	}
	return &r, nil
}

// router implements jumpstarter.v1 RouterService: byte streams to drivers.
type router struct {
	jumpstarterv1.UnimplementedRouterServiceServer
	e *Exporter
}

// Stream relays one byte stream between a client and a driver's stream
// method: one goroutine per direction, no queues, so gRPC flow control gives
// backpressure end to end.
func (r *router) Stream(cs jumpstarterv1.RouterService_StreamServer) error {
	md, _ := metadata.FromIncomingContext(cs.Context())
	req, err := parseStreamRequest(md)
	if err != nil {
		return err
	}
	svc := &service{e: r.e}
	n, err := svc.driverNode(req.UUID)
	if err != nil {
		return err
	}
	sess, err := svc.session()
	if err != nil {
		return err
	}
	done, err := r.e.clients.begin(cs.Context(), true)
	if err != nil {
		return err
	}
	defer done()
	routed, n := route(cs.Context(), n) // a child its driver made: its driver's process
	if req.Kind == "resource" {
		return serveUpload(cs, sess, n.uuid, req.XJmpContentEncoding)
	}
	// A frame from the client that does not decode ends the stream with
	// INVALID_ARGUMENT (relayUp cancels it with that cause).
	ctx, cancel := context.WithCancelCause(routed)
	defer cancel(nil)
	var local *os.File
	if v := md.Get(LocalFileHeader); len(v) > 0 {
		// A local client handed its data over as a file (localfile.go).
		if local = r.e.localFiles.take(v[0]); local == nil {
			return status.Errorf(codes.InvalidArgument, "stream: no file was handed over with token %q (or it waited over %s)", truncate(v[0], maxEcho), localFileTTL)
		}
		defer local.Close()
		ctx = host.WithLocalFile(ctx, local)
	}
	ps, explain, release, err := sess.Stream(ctx, n.uuid, req.Method)
	if err != nil {
		return err
	}
	defer release()
	// The plugin answers with its headers once the method exists; a missing
	// method fails here, before the client is told the stream is open.
	hdr, err := ps.Header()
	if err != nil {
		return explain(err)
	}
	if err := cs.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	switch {
	case local == nil:
		go relayUp(cs, ps, cancel)
	case len(hdr.Get(protocol.LocalFileTakenHeader)) > 0:
		// The plugin reads the file itself; the client sends only its
		// half-close.
		r.e.localFiles.taken.Add(1)
		r.e.logger.Debug("stream data taken by the plugin as a local file", "uuid", n.uuid, "method", req.Method)
		go relayUp(cs, ps, cancel)
	default:
		// A plugin that does not take files gets the file's bytes.
		r.e.logger.Debug("stream data sent to the plugin from a local file", "uuid", n.uuid, "method", req.Method)
		go sendFile(cs, ps, local, cancel)
	}
	err = relayDown(cs, ps, explain)
	if cause := context.Cause(ctx); status.Code(cause) == codes.InvalidArgument {
		return cause
	}
	return err
}

// relayUp carries the client's frames to the plugin until the client
// half-closes or goes away. Frames pass through as they arrived, without
// being decoded or copied: a StreamRequest and the plugin protocol's Frame
// have the same encoding. A frame that does not decode ends the stream:
// fail cancels it with the error.
func relayUp(cs jumpstarterv1.RouterService_StreamServer, ps pluginv1.Driver_StreamClient, fail context.CancelCauseFunc) {
	defer func() { _ = ps.CloseSend() }()
	for {
		f := new(protocol.Frame)
		if err := cs.RecvMsg(f); err != nil {
			if status.Code(err) == codes.InvalidArgument {
				fail(err)
			}
			return
		}
		switch k := f.Kind(); k {
		case protocol.KindData, protocol.KindGoaway, protocol.KindRST:
			err := ps.SendMsg(f)
			f.Free()
			if err != nil || k != protocol.KindData {
				return
			}
		default:
			f.Free() // PING and unknown kinds stop here
		}
	}
}

// sendFile sends f's bytes to the plugin, then half-closes, for a client
// that handed f over and sends no data; what the client sends (its
// half-close) is read and dropped. A file that cannot be read ends the
// stream (fail).
func sendFile(cs jumpstarterv1.RouterService_StreamServer, ps pluginv1.Driver_StreamClient, f *os.File, fail context.CancelCauseFunc) {
	go func() {
		for {
			m := new(protocol.Frame)
			err := cs.RecvMsg(m)
			m.Free()
			if err != nil {
				return
			}
		}
	}()
	fr := protocol.NewFrameReader(f)
	for {
		m, err := fr.Next()
		if m != nil {
			if serr := ps.SendMsg(m); serr != nil {
				m.Free()
				return
			}
			m.Free()
		}
		if errors.Is(err, io.EOF) {
			_ = ps.CloseSend()
			return
		}
		if err != nil {
			fail(status.Errorf(codes.Unavailable, "stream: reading the local file: %v", err))
			return
		}
	}
}

// relayDown carries the plugin's frames to the client, passed through as
// relayUp passes them. When the driver ends the stream the client gets
// GOAWAY and status ABORTED, as clients expect.
func relayDown(cs jumpstarterv1.RouterService_StreamServer, ps pluginv1.Driver_StreamClient, explain func(error) error) error {
	goaway := false
	for {
		f := new(protocol.Frame)
		if err := ps.RecvMsg(f); err != nil {
			if !errors.Is(err, io.EOF) {
				return explain(err)
			}
			if !goaway {
				if err := cs.SendMsg(protocol.Control(protocol.KindGoaway)); err != nil {
					return err
				}
			}
			return status.Error(codes.Aborted, "stream ended by the driver")
		}
		var err error
		switch f.Kind() {
		case protocol.KindData:
			err = cs.SendMsg(f)
		case protocol.KindGoaway:
			goaway = true
			err = cs.SendMsg(f)
		}
		f.Free()
		if err != nil {
			return fmt.Errorf("send to client: %w", err)
		}
	}
}
