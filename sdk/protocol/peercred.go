package protocol

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/credentials"
)

// ErrPeerRefused is the error of a handshake whose peer is not the process
// the check allows.
var ErrPeerRefused = errors.New("peer refused")

// PeerCredentials are the transport credentials of both ends of the plugin
// hop. They authenticate a connection on the plugin's unix socket by the
// kernel's credentials of the process at its other end (SO_PEERCRED): a
// plugin accepts only the exporter that started it (its parent), and the
// exporter accepts only the process it started. The socket lives in a
// directory only the exporter's user can enter; another process of that
// user that finds it anyway is refused by pid.
//
// allow is asked about each connection's peer pid and returns nil to accept
// it or an error saying why not; refused, if not nil, is told of each
// refusal (the plugin and the host log it). Bytes travel in the clear: a
// unix socket's traffic is not readable by other processes.
func PeerCredentials(allow func(pid int) error, refused func(error)) credentials.TransportCredentials {
	return &peerCreds{allow: allow, refused: refused}
}

// PeerInfo is the AuthInfo of a connection that [PeerCredentials] accepted.
type PeerInfo struct {
	credentials.CommonAuthInfo
	// PID is the process at the other end of the connection.
	PID int
}

// AuthType implements credentials.AuthInfo.
func (PeerInfo) AuthType() string { return "peercred" }

type peerCreds struct {
	allow   func(pid int) error
	refused func(error)
}

func (c *peerCreds) check(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	pid, err := PeerPID(conn)
	if err == nil {
		err = c.allow(pid)
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrPeerRefused, err)
		if c.refused != nil {
			c.refused(err)
		}
		_ = conn.Close()
		return nil, nil, err
	}
	// A unix socket between two processes of one host: nobody else reads it.
	info := PeerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, PID: pid}
	return conn, info, nil
}

func (c *peerCreds) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.check(conn)
}

func (c *peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.check(conn)
}

func (c *peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (c *peerCreds) Clone() credentials.TransportCredentials {
	clone := *c
	return &clone
}

func (c *peerCreds) OverrideServerName(string) error { return nil }

// ExpectPID returns an allow function for [PeerCredentials] that accepts
// only the process whose pid want returns at the time of the check.
func ExpectPID(role string, want func() int) func(pid int) error {
	return func(pid int) error {
		if w := want(); pid != w {
			return fmt.Errorf("the process at the other end of the socket is pid %d, not the %s (pid %d)", pid, role, w)
		}
		return nil
	}
}
