package exporter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/exporter/config"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// Metadata keys upstream's controller reads to know who calls.
const (
	mdKind      = "jumpstarter-kind"
	mdNamespace = "jumpstarter-namespace"
	mdName      = "jumpstarter-name"
)

// insecureEnv are the environment variables with which upstream turns off
// certificate verification for every controller connection.
var insecureEnv = []string{"JUMPSTARTER_GRPC_INSECURE", "JMP_GRPC_INSECURE"}

// controllerTLS is the TLS configuration for the controller and the router,
// as upstream reads the config's tls section: `ca` is a base64-encoded PEM
// bundle (a bare PEM bundle is accepted too), `insecure: true` is TLS
// without verifying the certificate (not plaintext); neither means the
// system's certificate authorities.
func controllerTLS(c config.TLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	insecure := c.Insecure
	for _, env := range insecureEnv {
		if os.Getenv(env) == "1" {
			insecure = true
		}
	}
	switch {
	case insecure:
		cfg.InsecureSkipVerify = true //nolint:gosec // the operator asked for it: tls.insecure or $JUMPSTARTER_GRPC_INSECURE
	case c.CA != "":
		pem := []byte(c.CA)
		if !strings.Contains(c.CA, "-----BEGIN") {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.CA))
			if err != nil {
				return nil, fmt.Errorf("exporter: tls.ca is neither base64 nor PEM: %w", err)
			}
			pem = b
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("exporter: tls.ca holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// bearer is per-call credentials: the authorization header, and for the
// controller the exporter's identity.
type bearer struct {
	md map[string]string
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return b.md, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// exporterCredentials are the credentials every controller call carries.
func exporterCredentials(cfg *config.Config) credentials.PerRPCCredentials {
	return bearer{md: map[string]string{
		"authorization": "Bearer " + cfg.Token,
		mdKind:          "Exporter",
		mdNamespace:     cfg.Metadata.Namespace,
		mdName:          cfg.Metadata.Name,
	}}
}

// routerCredentials carry a router token, the only credential of a router
// stream.
func routerCredentials(token string) credentials.PerRPCCredentials {
	return bearer{md: map[string]string{"authorization": "Bearer " + token}}
}

// keepalive defaults are upstream's: a ping every 20 s, even without calls,
// so that a controller or router that went away is noticed.
const (
	defaultKeepaliveTime    = 20 * time.Second
	defaultKeepaliveTimeout = 180 * time.Second
)

// channelOptions turns the config's grpcOptions (gRPC core channel
// arguments, as upstream passes them to grpcio) into grpc-go dial options.
// Arguments grpc-go has no equivalent for are logged once and skipped.
func channelOptions(opts map[string]any, log hclog.Logger) []grpc.DialOption {
	ka := keepalive.ClientParameters{Time: defaultKeepaliveTime, Timeout: defaultKeepaliveTimeout, PermitWithoutStream: true}
	var out []grpc.DialOption
	for _, k := range sortedKeys(opts) {
		v := opts[k]
		n, isInt := v.(int64)
		s, _ := v.(string)
		switch k {
		case "grpc.keepalive_time_ms":
			if isInt {
				ka.Time = time.Duration(n) * time.Millisecond
			}
		case "grpc.keepalive_timeout_ms":
			if isInt {
				ka.Timeout = time.Duration(n) * time.Millisecond
			}
		case "grpc.keepalive_permit_without_calls":
			if isInt {
				ka.PermitWithoutStream = n != 0
			}
		case "grpc.max_receive_message_length":
			if isInt && n > 0 {
				out = append(out, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(int(n))))
			}
		case "grpc.max_send_message_length":
			if isInt && n > 0 {
				out = append(out, grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(int(n))))
			}
		case "grpc.default_authority", "grpc.ssl_target_name_override":
			if s != "" {
				out = append(out, grpc.WithAuthority(s))
			}
		case "grpc.lb_policy_name", "grpc.http2.max_pings_without_data":
			// grpc-go picks the first address and does not limit pings.
		default:
			log.Warn("grpcOptions: grpc-go has no equivalent of this option; it is ignored", "option", k)
		}
	}
	return append(out, grpc.WithKeepaliveParams(ka))
}

// dialController opens the (lazily connecting, self-reconnecting) client
// connection to the controller.
func dialController(cfg *config.Config, tlsCfg *tls.Config, chanOpts []grpc.DialOption) (*grpc.ClientConn, error) {
	if _, _, err := net.SplitHostPort(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("exporter: endpoint %q: want HOST:PORT: %w", cfg.Endpoint, err)
	}
	opts := append(protocol.DialOptions(protocol.TCP|protocol.TLS),
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithPerRPCCredentials(exporterCredentials(cfg)))
	opts = append(opts, chanOpts...)
	conn, err := grpc.NewClient("dns:///"+cfg.Endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("exporter: controller %s: %w", cfg.Endpoint, err)
	}
	return conn, nil
}

// dialRouter opens a connection to a router for one client connection.
func dialRouter(endpoint, token string, tlsCfg *tls.Config, chanOpts []grpc.DialOption) (*grpc.ClientConn, error) {
	opts := append(protocol.DialOptions(protocol.TCP|protocol.TLS),
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithPerRPCCredentials(routerCredentials(token)))
	opts = append(opts, chanOpts...)
	conn, err := grpc.NewClient("dns:///"+endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("exporter: router %s: %w", endpoint, err)
	}
	return conn, nil
}
