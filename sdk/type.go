package sdk

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/types/known/structpb"
)

// Type is a driver type a plugin binary provides.
type Type struct {
	// Name is the short type name operators write as `type` in exporter configs.
	Name string
	// Aliases are other accepted names, such as the upstream Jumpstarter class
	// path ("jumpstarter_driver_power.driver.MockPower").
	Aliases []string
	// Client is the client class a Jumpstarter client loads for an instance
	// ("jumpstarter_driver_power.client.PowerClient"), reported as the label
	// jumpstarter.dev/client.
	Client string
	// Description describes an instance unless the driver implements Describer
	// or the config overrides it.
	Description string
	// Exclusive marks drivers that own a device only one process may open
	// (a serial port): when such a driver is replaced, the old process stops
	// before the new one starts.
	Exclusive bool
	// New builds an instance from its config; see [Factory].
	New Constructor
}

// Constructor builds driver instances of one type. Make one with [Factory].
type Constructor interface {
	// construct decodes cfg strictly and builds the instance.
	construct(cfg *structpb.Struct) (Driver, []*pluginv1.ConfigProblem)
	// prototype is an unconfigured instance whose Exports describe the type.
	prototype() Driver
	// configType is the Go type of the config.
	configType() reflect.Type
}

// Defaulter is implemented by config types (on their pointer) that fill in
// defaults before the YAML config is decoded over them.
type Defaulter interface {
	SetDefaults()
}

// Factory turns a typed constructor into a [Constructor]. C is the config
// type: the instance's YAML `config` is decoded into it strictly (unknown keys
// and wrong types are errors naming the key), after SetDefaults when *C
// implements [Defaulter]. D is usually a pointer to a struct embedding [Base].
// An error returned by fn is reported to the operator as a problem with the
// instance's config; use [InvalidConfig] to point at one key.
func Factory[C any, D Driver](fn func(cfg C) (D, error)) Constructor {
	return factory[C, D]{fn: fn}
}

type factory[C any, D Driver] struct {
	fn func(cfg C) (D, error)
}

func (f factory[C, D]) configType() reflect.Type { return reflect.TypeFor[C]() }

func (f factory[C, D]) prototype() Driver {
	t := reflect.TypeFor[D]()
	if t.Kind() == reflect.Pointer {
		return reflect.New(t.Elem()).Interface().(Driver)
	}
	var d D
	return d
}

func (f factory[C, D]) construct(cfg *structpb.Struct) (Driver, []*pluginv1.ConfigProblem) {
	var c C
	if d, ok := any(&c).(Defaulter); ok {
		d.SetDefaults()
	}
	src := structpb.NewStructValue(cfg)
	if cfg == nil {
		src = structpb.NewStructValue(&structpb.Struct{})
	}
	if err := decodeValue(src, reflect.ValueOf(&c).Elem(), ""); err != nil {
		return nil, []*pluginv1.ConfigProblem{problem(err)}
	}
	d, err := f.fn(c)
	if err != nil {
		return nil, []*pluginv1.ConfigProblem{problem(err)}
	}
	if v := reflect.ValueOf(d); !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return nil, []*pluginv1.ConfigProblem{{Message: "the driver's constructor returned no instance"}}
	}
	return d, nil
}

// problem turns a decoding or constructor error into a config problem.
func problem(err error) *pluginv1.ConfigProblem {
	var ve *ValueError
	if errors.As(err, &ve) {
		return &pluginv1.ConfigProblem{Key: ve.Path, Message: ve.Msg}
	}
	return &pluginv1.ConfigProblem{Message: err.Error()}
}

// check reports problems with the type's definition itself.
func (t *Type) check() error {
	if t.Name == "" {
		return errors.New("sdk: a driver type needs a Name")
	}
	if t.New == nil {
		return fmt.Errorf("sdk: driver type %q: New is nil (use sdk.Factory)", t.Name)
	}
	proto := t.New.prototype()
	if proto == nil {
		return fmt.Errorf("sdk: driver type %q: its constructor returns an interface type; return the concrete driver type (such as *Power) so its methods can be described", t.Name)
	}
	seen := map[string]bool{}
	for _, m := range proto.Exports() {
		if m.err != nil {
			return fmt.Errorf("driver type %q: %w", t.Name, m.err)
		}
		if seen[m.name] {
			return fmt.Errorf("sdk: driver type %q exports %q twice", t.Name, m.name)
		}
		seen[m.name] = true
	}
	return nil
}

// describe reports the type on the wire.
func (t *Type) describe() *pluginv1.DriverType {
	dt := &pluginv1.DriverType{
		Name:        t.Name,
		Aliases:     t.Aliases,
		Client:      t.Client,
		Description: t.Description,
		Exclusive:   t.Exclusive,
	}
	for _, m := range t.New.prototype().Exports() {
		dt.Methods = append(dt.Methods, m.info())
	}
	if ct := t.New.configType(); ct.Kind() == reflect.Struct {
		for _, k := range structKeys(ct) {
			dt.Config = append(dt.Config, &pluginv1.ConfigKey{Name: k.Name, Type: k.Type, Description: k.Description})
		}
	}
	return dt
}

// InvalidConfig reports, from a constructor, a problem with one config key.
// The exporter points the operator at that key's line in the config file.
func InvalidConfig(key, format string, args ...any) error {
	return &ValueError{Path: key, Msg: fmt.Sprintf(format, args...)}
}
