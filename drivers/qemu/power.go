package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jumpwire-dev/jumpwire/drivers/storage"
	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Power is the board's power: it starts and stops the qemu process.
var Power = sdk.Type{
	Name:        "qemu-power",
	Aliases:     []string{"jumpstarter_driver_qemu.driver.QemuPower"},
	Client:      "jumpstarter_driver_power.client.PowerClient",
	Description: "QEMU virtual board power",
	Exclusive:   true,
	New:         sdk.Factory(NewPower),
}

// PowerConfig configures the virtual machine.
type PowerConfig struct {
	StateDir    string             `json:"state_dir" doc:"the board's state directory, shared by its children (required)"`
	Arch        string             `json:"arch" doc:"the guest architecture, as in qemu-system-ARCH (default: the host's)"`
	Machine     string             `json:"machine" doc:"the machine type (default q35 on x86_64, virt on aarch64)"`
	CPU         string             `json:"cpu" doc:"the CPU model (default host with KVM, max without)"`
	SMP         int                `json:"smp" doc:"number of CPUs (default 1)"`
	Memory      string             `json:"memory" doc:"memory size, e.g. 256M (default 256M)"`
	Accel       string             `json:"accel" doc:"auto, kvm or tcg; auto uses KVM when /dev/kvm is usable for the host's architecture (default auto)"`
	Kernel      string             `json:"kernel" doc:"a kernel to boot directly (default: boot from the disk)"`
	Initrd      string             `json:"initrd" doc:"an initramfs for the kernel"`
	Append      string             `json:"append" doc:"the kernel command line (default console=ttyS0 on x86_64, console=ttyAMA0 on aarch64)"`
	Disk        string             `json:"disk" doc:"the board's disk, a raw image (default state_dir/disk.img); flash it through a storage driver"`
	Forward     map[string]Forward `json:"forward" doc:"name -> {guest_port, host_port}: TCP ports of the guest reachable on 127.0.0.1"`
	Binary      string             `json:"binary" doc:"the qemu executable (default qemu-system-ARCH on PATH)"`
	Args        []string           `json:"args" doc:"more qemu arguments"`
	StopTimeout time.Duration      `json:"stop_timeout" doc:"how long off() waits for qemu to quit before killing it (default 5s)"`
	Backlog     int                `json:"backlog" doc:"bytes of recent console output a new console stream receives first (default 65536, 0 for none)"`
}

// defaultPath is where qemu is looked for when the plugin has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Forward is one TCP port of the guest forwarded to the host.
type Forward struct {
	GuestPort int `json:"guest_port" doc:"the guest's port (required)"`
	HostPort  int `json:"host_port" doc:"the port on 127.0.0.1 (default: a free port chosen at power on)"`
}

// SetDefaults fills in the defaults before the config is decoded.
func (c *PowerConfig) SetDefaults() {
	c.Arch, c.SMP, c.Memory, c.Accel, c.StopTimeout, c.Backlog = hostArch(), 1, "256M", "auto", 5*time.Second, 64<<10
}

func hostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "arm":
		return "arm"
	case "riscv64":
		return "riscv64"
	}
	return runtime.GOARCH
}

// QemuPower runs the board's qemu process. (Power is its sdk.Type.)
type QemuPower struct { //nolint:revive // qemu.Power is the driver type
	sdk.Base
	cfg PowerConfig

	mu       sync.Mutex // held across on and off
	vm       *vm        // nil while off
	lastExit string     // how the last qemu ended
	foreign  int        // the keeper of a board another exporter runs in state_dir
}

// vm is one running qemu, under its keeper (see keeper.go).
type vm struct {
	keeper  int             // the keeper's pid; its process group holds qemu
	qemu    int             // qemu's pid
	exited  <-chan struct{} // closed once the keeper has exited
	stopped atomic.Bool     // off() asked it to stop
	accel   string
	ports   map[string]int
}

// Interface guards
var (
	_ sdk.Driver     = (*QemuPower)(nil)
	_ sdk.Closer     = (*QemuPower)(nil)
	_ sdk.Resetter   = (*QemuPower)(nil)
	_ sdk.HandOverer = (*QemuPower)(nil)
)

// NewPower checks the config.
func NewPower(cfg PowerConfig) (*QemuPower, error) {
	if err := checkStateDir(cfg.StateDir); err != nil {
		return nil, err
	}
	if cfg.Disk == "" {
		cfg.Disk = filepath.Join(cfg.StateDir, "disk.img")
	}
	switch {
	case cfg.Arch == "" || strings.ContainsAny(cfg.Arch, "/ "):
		return nil, sdk.InvalidConfig("arch", "expected an architecture such as x86_64 or aarch64, got %q", cfg.Arch)
	case cfg.SMP < 1:
		return nil, sdk.InvalidConfig("smp", "must be at least 1, got %d", cfg.SMP)
	case !slices.Contains([]string{"auto", "kvm", "tcg"}, cfg.Accel):
		return nil, sdk.InvalidConfig("accel", "expected auto, kvm or tcg, got %q", cfg.Accel)
	case cfg.Initrd != "" && cfg.Kernel == "":
		return nil, sdk.InvalidConfig("initrd", "needs a kernel")
	case cfg.StopTimeout <= 0:
		return nil, sdk.InvalidConfig("stop_timeout", "must be positive, got %v", cfg.StopTimeout)
	case cfg.Backlog < 0:
		return nil, sdk.InvalidConfig("backlog", "must not be negative, got %d", cfg.Backlog)
	}
	if _, err := parseSize(cfg.Memory); err != nil {
		return nil, sdk.InvalidConfig("memory", "%v", err)
	}
	for _, k := range []struct{ key, path string }{{"kernel", cfg.Kernel}, {"initrd", cfg.Initrd}} {
		if k.path != "" && !filepath.IsAbs(k.path) {
			return nil, sdk.InvalidConfig(k.key, "must be an absolute path, got %q", k.path)
		}
	}
	for name, f := range cfg.Forward {
		switch {
		case name == "" || strings.ContainsAny(name, "/ ."):
			return nil, sdk.InvalidConfig("forward."+name, "a forward's name must be a word")
		case f.GuestPort < 1 || f.GuestPort > 65535:
			return nil, sdk.InvalidConfig("forward."+name+".guest_port", "must be 1-65535, got %d", f.GuestPort)
		case f.HostPort < 0 || f.HostPort > 65535:
			return nil, sdk.InvalidConfig("forward."+name+".host_port", "must be 1-65535 (or 0 for a free port), got %d", f.HostPort)
		}
	}
	if cfg.Binary == "" {
		cfg.Binary = "qemu-system-" + cfg.Arch
	}
	if os.Getenv("PATH") == "" {
		// The exporter starts plugins with an empty environment.
		os.Setenv("PATH", defaultPath)
	}
	p := &QemuPower{cfg: cfg}
	p.adopt()
	return p, nil
}

// adopt takes over the board a predecessor of this process left running
// (it crashed, or was replaced within the session): configured, not Reset,
// the driver reads the board's state instead of imposing one.
func (p *QemuPower) adopt() {
	rec, ok := readRunRecord(p.cfg.StateDir)
	if !ok {
		return
	}
	f, alive := openKeeper(rec)
	switch {
	case !alive:
		os.Remove(runRecordPath(p.cfg.StateDir)) // a board that ended meanwhile
		return
	case rec.Owner != owner:
		f.Close()
		p.foreign = rec.Keeper
		return
	}
	p.vm = &vm{keeper: rec.Keeper, qemu: rec.Qemu, exited: waitPidfd(f), accel: rec.Accel, ports: rec.Ports}
}

// parseSize checks a qemu memory size: a number with an optional K, M, G or T.
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("expected a size such as 256M or 1G")
	}
	mult := int64(1 << 20) // qemu's unit without a suffix is MiB
	switch s[len(s)-1] {
	case 'k', 'K':
		mult, s = 1<<10, s[:len(s)-1]
	case 'm', 'M':
		mult, s = 1<<20, s[:len(s)-1]
	case 'g', 'G':
		mult, s = 1<<30, s[:len(s)-1]
	case 't', 'T':
		mult, s = 1<<40, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("expected a size such as 256M or 1G, got %q", s)
	}
	return n * mult, nil
}

// Exports lists the methods upstream's PowerClient calls, and state.
func (p *QemuPower) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("on", p.On, "Start the virtual board"),
		sdk.Export("off", p.Off, "Stop the virtual board"),
		sdk.Export("state", p.State, "Whether the board is running"),
		sdk.Export("status", p.Status, "The board's qemu: running or not, its pid, accelerator, forwarded ports and how it last ended"),
	}
}

// Status is what status() reports.
type Status struct {
	On       bool           `json:"on"`
	Pid      int            `json:"pid,omitempty"`
	Accel    string         `json:"accel,omitempty"`
	Ports    map[string]int `json:"ports,omitempty"`
	LastExit string         `json:"last_exit,omitempty"`
	Console  string         `json:"console"`
}

// State reports whether qemu runs.
func (p *QemuPower) State(ctx context.Context) (bool, error) {
	s, err := p.Status(ctx)
	return s.On, err
}

// Status reports the board's qemu.
func (p *QemuPower) Status(context.Context) (Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reapLocked()
	s := Status{LastExit: p.lastExit, Console: consoleSocket(p.cfg.StateDir)}
	if p.vm != nil {
		s.On, s.Pid, s.Accel, s.Ports = true, p.vm.qemu, p.vm.accel, p.vm.ports
	}
	return s, nil
}

// reapLocked forgets a qemu that exited by itself: the board is off.
func (p *QemuPower) reapLocked() {
	if p.vm == nil {
		return
	}
	select {
	case <-p.vm.exited:
		p.forgetLocked()
	default:
	}
}

// forgetLocked records how the exited qemu ended and removes what it left.
func (p *QemuPower) forgetLocked() {
	v := p.vm
	p.vm = nil
	rec, recorded := readExitRecord(p.cfg.StateDir)
	switch {
	case v.stopped.Load():
		p.lastExit = "powered off"
	case !recorded:
		p.lastExit = "qemu ended with its keeper (killed)"
	case rec.Error == "":
		p.lastExit = "qemu exited by itself (the guest powered off)"
	default:
		p.lastExit = fmt.Sprintf("qemu ended: %s%s", rec.Error, (&tail{buf: []byte(rec.Stderr)}).suffix())
	}
	if !v.stopped.Load() {
		p.Logger().Warn("qemu exited; the board is off", "how", p.lastExit)
	}
	os.Remove(runRecordPath(p.cfg.StateDir))
	os.Remove(consoleSocket(p.cfg.StateDir)) // left behind by a killed keeper
	for name := range v.ports {
		os.Remove(forwardPortFile(p.cfg.StateDir, name))
	}
}

// On starts qemu. A board that is on stays on.
func (p *QemuPower) On(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reapLocked()
	if p.vm != nil {
		p.Logger().Warn("already powered on")
		return nil
	}
	if p.foreign != 0 {
		if rec, ok := readRunRecord(p.cfg.StateDir); ok && rec.Keeper == p.foreign {
			if f, alive := openKeeper(rec); alive {
				f.Close()
				return fmt.Errorf("%w: qemu: another exporter (pid %d) runs the board in %s", sdk.ErrBusy, rec.Owner, p.cfg.StateDir)
			}
		}
		p.foreign = 0
	}
	if err := p.checkDisk(); err != nil {
		return err
	}
	if err := os.MkdirAll(p.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("%w: qemu: state directory: %w", sdk.ErrUnavailable, err)
	}
	memory, err := p.applyNextBoot()
	if err != nil {
		return err
	}
	ports, err := p.pickPorts()
	if err != nil {
		return err
	}
	accel := p.accel()
	argv := p.argv(accel, memory, ports)
	os.Remove(exitRecordPath(p.cfg.StateDir))
	p.Logger().Info("power on", "argv", strings.Join(argv, " "))
	cmd, qemuPid, err := startKeeper(keeperSpec{Argv: argv, StateDir: p.cfg.StateDir, Backlog: p.cfg.Backlog})
	if err != nil {
		if strings.Contains(err.Error(), "is not installed") {
			return fmt.Errorf("%w: qemu: %w", sdk.ErrUnavailable, err)
		}
		return fmt.Errorf("%w: %w", sdk.ErrUnavailable, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the keeper; how qemu ended is in its exit record
		close(exited)
	}()
	v := &vm{keeper: cmd.Process.Pid, qemu: qemuPid, exited: exited, accel: accel, ports: ports}
	start, err := startTime(v.keeper)
	if err == nil {
		var b []byte
		b, err = json.Marshal(runRecord{Owner: owner, Keeper: v.keeper, KeeperStart: start, Qemu: qemuPid, Accel: accel, Ports: ports})
		if err == nil {
			err = writeFileAtomic(runRecordPath(p.cfg.StateDir), b)
		}
	}
	if err != nil {
		p.Logger().Error("could not record the running board; a successor of this plugin will not find it", "error", err)
	}
	for name, port := range ports {
		if err := os.WriteFile(forwardPortFile(p.cfg.StateDir, name), []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
			p.Logger().Error("could not record a forwarded port", "forward", name, "error", err)
		}
	}
	p.vm = v
	// A qemu that refuses its arguments exits at once: say why.
	select {
	case <-v.exited:
		p.forgetLocked()
		return fmt.Errorf("%w: qemu: %s", sdk.ErrUnavailable, strings.TrimPrefix(p.lastExit, "qemu "))
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
	}
	return nil
}

// checkDisk refuses to boot from a disk that is missing, switched away or
// half written.
func (p *QemuPower) checkDisk() error {
	if _, err := os.Stat(p.cfg.Disk); errors.Is(err, fs.ErrNotExist) {
		if p.cfg.Kernel != "" {
			return nil // a kernel and its initramfs may be all the board has
		}
		return fmt.Errorf("%w: qemu: the board has no disk image at %s: flash one first", sdk.ErrBusy, p.cfg.Disk)
	}
	st, err := storage.ReadState(storage.StatePath(p.cfg.Disk))
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	switch {
	case st.Error == "writing":
		return fmt.Errorf("%w: qemu: the disk %s is being written; wait for the write to finish", sdk.ErrBusy, p.cfg.Disk)
	case !st.Complete:
		return fmt.Errorf("%w: qemu: the disk %s was not fully written (%d bytes: %s); flash it again", sdk.ErrBusy, p.cfg.Disk, st.Written, st.Error)
	case st.Mux == storage.Host:
		return fmt.Errorf("%w: qemu: the disk %s is switched to the host; call dut() on its storage first", sdk.ErrBusy, p.cfg.Disk)
	case st.Mux == storage.Off:
		return fmt.Errorf("%w: qemu: the disk %s is switched off; call dut() on its storage first", sdk.ErrBusy, p.cfg.Disk)
	}
	return nil
}

// pickPorts chooses the host port of each forward.
func (p *QemuPower) pickPorts() (map[string]int, error) {
	ports := map[string]int{}
	for name, f := range p.cfg.Forward {
		if f.HostPort != 0 {
			ports[name] = f.HostPort
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("%w: qemu: a free port for forward %s: %w", sdk.ErrUnavailable, name, err)
		}
		ports[name] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	return ports, nil
}

// accel chooses the accelerator: KVM when asked, or when usable (see
// kvmUsable), else TCG.
func (p *QemuPower) accel() string {
	if p.cfg.Accel != "auto" {
		return p.cfg.Accel
	}
	if p.cfg.Arch == hostArch() && kvmUsable() {
		return "kvm"
	}
	return "tcg"
}

// kvmUsable reports whether /dev/kvm opens for reading and writing and, on
// x86, the CPU has hardware virtualization (vmx or svm): a /dev/kvm without
// it (such as PVM's, in a cloud VM) runs only guests built for it, and an
// ordinary kernel hangs there silently.
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "386" {
		return true
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(info), "\n") {
		if strings.HasPrefix(line, "flags") {
			flags := strings.Fields(line)
			return slices.Contains(flags, "vmx") || slices.Contains(flags, "svm")
		}
	}
	return false
}

// argv is qemu's command line.
func (p *QemuPower) argv(accel, memory string, ports map[string]int) []string {
	c := p.cfg
	machine, cpu, console := c.Machine, c.CPU, "ttyS0"
	if machine == "" {
		machine = map[string]string{"x86_64": "q35", "i386": "q35", "aarch64": "virt", "arm": "virt", "riscv64": "virt"}[c.Arch]
	}
	if cpu == "" {
		cpu = "max"
		if accel == "kvm" {
			cpu = "host"
		}
	}
	if c.Arch == "aarch64" || c.Arch == "arm" {
		console = "ttyAMA0"
	}
	argv := []string{c.Binary, "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-serial", "stdio", "-accel", accel, "-cpu", cpu, "-smp", strconv.Itoa(c.SMP), "-m", memory}
	if machine != "" {
		argv = append(argv, "-machine", machine)
	}
	if c.Kernel != "" {
		argv = append(argv, "-kernel", c.Kernel)
		if c.Initrd != "" {
			argv = append(argv, "-initrd", c.Initrd)
		}
		cmdline := c.Append
		if cmdline == "" {
			cmdline = "console=" + console
		}
		argv = append(argv, "-append", cmdline)
	}
	if _, err := os.Stat(c.Disk); err == nil {
		argv = append(argv, "-drive", "file="+c.Disk+",format=raw,if=virtio,cache=writeback")
	}
	net := "user,id=net0"
	for _, name := range slices.Sorted(maps.Keys(ports)) {
		net += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", ports[name], c.Forward[name].GuestPort)
	}
	argv = append(argv, "-netdev", net, "-device", "virtio-net-pci,netdev=net0")
	return append(argv, c.Args...)
}

// Off stops qemu: SIGTERM, then after stop_timeout SIGKILL to its group.
func (p *QemuPower) Off(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reapLocked()
	if p.vm == nil {
		p.Logger().Warn("already powered off")
		return nil
	}
	v := p.vm
	v.stopped.Store(true)
	_ = syscall.Kill(v.qemu, syscall.SIGTERM)
	select {
	case <-v.exited:
	case <-time.After(p.cfg.StopTimeout):
		p.Logger().Warn("qemu ignored SIGTERM; killing it", "pid", v.qemu)
		_ = syscall.Kill(-v.keeper, syscall.SIGKILL)
		<-v.exited
	}
	p.forgetLocked()
	p.Logger().Info("power off")
	return nil
}

// Close powers the board off: nothing of a session outlives it.
func (p *QemuPower) Close(ctx context.Context) error { return p.Off(ctx) }

// HandOver leaves the board running for the successor process that
// replaces this one (a swap): it adopts the board from the run record.
func (p *QemuPower) HandOver(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reapLocked()
	if p.vm != nil {
		p.Logger().Info("handing the running board over to the successor", "qemu", p.vm.qemu, "keeper", p.vm.keeper)
	}
	return nil
}

// Reset starts a session with the board off: a board a previous session
// left running (its Close failed) is powered off.
func (p *QemuPower) Reset(ctx context.Context) error {
	p.mu.Lock()
	v := p.vm
	p.mu.Unlock()
	if v == nil {
		return nil
	}
	return p.Off(ctx)
}

// tail keeps the last lines qemu wrote to stderr, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// suffix is ": LAST LINE" of stderr, or "".
func (t *tail) suffix() string {
	s := t.String()
	if s == "" {
		return ""
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	var last string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	return ": " + last
}

var _ io.Writer = (*tail)(nil)
