package config

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Keys accepted in each mapping, in the order error messages list them.
var (
	topKeys = []string{"apiVersion", "kind", "metadata", "endpoint", "tls", "token", "grpcOptions",
		"description", "motd", "hooks", "export", "failureDetection", "exitOnLeaseEnd", "python"}
	metadataKeys         = []string{"namespace", "name"}
	hooksKeys            = []string{"beforeLease", "afterLease"}
	hookKeys             = []string{"script", "exec", "timeout", "onFailure"}
	tlsKeys              = []string{"ca", "insecure"}
	failureDetectionKeys = []string{"maxRapidFailures", "rapidFailureWindow"}
	onFailureValues      = []string{OnFailureWarn, OnFailureEndLease, OnFailureExit}
)

// config walks the root mapping.
func (p *parser) config(root *yaml.Node) *Config {
	c := &Config{
		File: p.file,
		FailureDetection: FailureDetection{
			MaxRapidFailures:   DefaultMaxRapidFailures,
			RapidFailureWindow: DefaultRapidFailureWindow,
		},
	}
	p.enter(root)
	defer p.leave(root)
	fs := p.fields(root, "", topKeys)
	rootPos := p.pos(root)

	c.APIVersion = p.fixed(fs, rootPos, "apiVersion", APIVersion)
	c.Kind = p.fixed(fs, rootPos, "kind", Kind)
	if fs.missing("metadata") {
		p.errorAt(rootPos, "metadata", "required; expected a mapping with name (and optionally namespace)")
	} else if v := fs.value("metadata"); v != nil {
		c.Metadata = p.metadata(fs["metadata"].key, v)
	}
	for name, dst := range map[string]*string{
		"endpoint": &c.Endpoint, "token": &c.Token, "description": &c.Description, "motd": &c.Motd,
		"python": &c.Python,
	} {
		if v := fs.value(name); v != nil {
			*dst, _ = p.str(v, name)
		}
	}
	if v := fs.value("tls"); v != nil {
		c.TLS = p.tls(v)
	}
	if v := fs.value("grpcOptions"); v != nil {
		c.GRPCOptions = p.grpcOptions(v)
	}
	if v := fs.value("failureDetection"); v != nil {
		p.failureDetection(v, &c.FailureDetection)
	}
	if v := fs.value("exitOnLeaseEnd"); v != nil {
		c.ExitOnLeaseEnd = p.boolean(v, "exitOnLeaseEnd")
	}
	if v := fs.value("hooks"); v != nil {
		c.Hooks = p.hooks(v)
	}
	if v := fs.value("export"); v != nil {
		if m := p.mapping(v, "export"); m != nil {
			c.Export = p.instances(m, "export", "")
		}
	}
	return c
}

// fixed checks a required key that has exactly one accepted value.
func (p *parser) fixed(fs fieldSet, rootPos Pos, name, want string) string {
	if fs.missing(name) {
		p.errorAt(rootPos, name, "required; expected %q", want)
		return ""
	}
	v := fs.value(name)
	if v == nil {
		return ""
	}
	if v.Kind != yaml.ScalarNode || v.ShortTag() != tagStr || v.Value != want {
		p.errorf(v, name, "expected %q, got %s", want, describe(v))
		return ""
	}
	return want
}

func (p *parser) metadata(k, v *yaml.Node) Metadata {
	var md Metadata
	m := p.mapping(v, "metadata")
	if m == nil {
		return md
	}
	p.enter(m)
	defer p.leave(m)
	fs := p.fields(m, "metadata", metadataKeys)
	if v := fs.value("namespace"); v != nil {
		md.Namespace, _ = p.str(v, "metadata.namespace")
	}
	if fs.missing("name") {
		p.errorf(k, "metadata.name", "required; the exporter name (it also seeds the driver uuids)")
	} else if v := fs.value("name"); v != nil {
		md.Name, _ = p.nonEmpty(v, "metadata.name")
	}
	return md
}

func (p *parser) hooks(v *yaml.Node) Hooks {
	var h Hooks
	m := p.mapping(v, "hooks")
	if m == nil {
		return h
	}
	p.enter(m)
	defer p.leave(m)
	fs := p.fields(m, "hooks", hooksKeys)
	if v := fs.value("beforeLease"); v != nil {
		h.BeforeLease = p.hook(fs["beforeLease"].key, v, "hooks.beforeLease")
	}
	if v := fs.value("afterLease"); v != nil {
		h.AfterLease = p.hook(fs["afterLease"].key, v, "hooks.afterLease")
	}
	return h
}

func (p *parser) hook(k, v *yaml.Node, path string) *Hook {
	m := p.mapping(v, path)
	if m == nil {
		return nil
	}
	p.enter(m)
	defer p.leave(m)
	h := &Hook{Exec: DefaultHookExec, Timeout: DefaultHookTimeout, OnFailure: OnFailureWarn, Pos: p.pos(k)}
	fs := p.fields(m, path, hookKeys)
	if fs.missing("script") {
		p.errorf(k, path+".script", "required; expected the script to run (inline, or the path of a file)")
	} else if v := fs.value("script"); v != nil {
		h.Script, _ = p.nonEmpty(v, path+".script")
	}
	if v := fs.value("exec"); v != nil {
		if s, ok := p.nonEmpty(v, path+".exec"); ok {
			h.Exec = s
		}
	}
	if v := fs.value("timeout"); v != nil {
		if d, ok := p.seconds(v, path+".timeout"); ok {
			h.Timeout = d
		}
	}
	if v := fs.value("onFailure"); v != nil {
		key := path + ".onFailure"
		if s, ok := p.str(v, key); ok {
			if slices.Contains(onFailureValues, s) {
				h.OnFailure = s
			} else {
				p.errorf(v, key, "%q is not one of %s", clip(s), strings.Join(onFailureValues, ", "))
			}
		}
	}
	return h
}

func (p *parser) tls(v *yaml.Node) TLS {
	var t TLS
	m := p.mapping(v, "tls")
	if m == nil {
		return t
	}
	p.enter(m)
	defer p.leave(m)
	fs := p.fields(m, "tls", tlsKeys)
	if v := fs.value("ca"); v != nil {
		t.CA, _ = p.str(v, "tls.ca")
	}
	if v := fs.value("insecure"); v != nil {
		t.Insecure = p.boolean(v, "tls.insecure")
	}
	return t
}

// grpcOptions accepts Jumpstarter's map of channel options (strings or integers).
func (p *parser) grpcOptions(v *yaml.Node) map[string]any {
	m := p.mapping(v, "grpcOptions")
	if m == nil {
		return nil
	}
	p.enter(m)
	defer p.leave(m)
	out := map[string]any{}
	for _, pr := range p.pairs(m, "grpcOptions") {
		key := joinKey("grpcOptions", pr.name)
		v := p.deref(pr.val, key)
		if v == nil {
			continue
		}
		if n, ok := p.integer(v); ok {
			out[pr.name] = n
		} else if v.Kind == yaml.ScalarNode && v.ShortTag() == tagStr {
			out[pr.name] = v.Value
		} else {
			p.errorf(v, key, "expected a string or an integer, got %s", describe(v))
		}
	}
	return out
}

func (p *parser) failureDetection(v *yaml.Node, fd *FailureDetection) {
	m := p.mapping(v, "failureDetection")
	if m == nil {
		return
	}
	p.enter(m)
	defer p.leave(m)
	fs := p.fields(m, "failureDetection", failureDetectionKeys)
	if v := fs.value("maxRapidFailures"); v != nil {
		n, ok := p.integer(v)
		if ok && n > 0 && n <= 1<<31-1 {
			fd.MaxRapidFailures = int(n)
		} else {
			p.errorf(v, "failureDetection.maxRapidFailures", "expected a positive integer, got %s", describe(v))
		}
	}
	if v := fs.value("rapidFailureWindow"); v != nil {
		if d, ok := p.seconds(v, "failureDetection.rapidFailureWindow"); ok {
			fd.RapidFailureWindow = d
		}
	}
}
