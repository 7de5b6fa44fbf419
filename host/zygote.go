package host

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"golang.org/x/sys/unix"
)

// Zygotes starts Python driver instances by forking them from one
// pre-imported Python process per interpreter (python -m jumpwire_pyhost
// zygote), so N instances share the interpreter's, grpcio's, pydantic's and
// the driver packages' pages and start in milliseconds. An instance forked
// by a zygote is supervised like any plugin process: it has its own process
// group, its stdout and stderr are pipes the host made, the zygote reports
// its exit, and it dies with the zygote, which dies with the exporter.
//
// A Zygotes must be Closed; the zero value is not usable, see NewZygotes.
type Zygotes struct {
	env []string // the zygotes' environment

	mu      sync.Mutex
	byPath  map[string]*zygote
	retired []*zygote // zygotes holding code since upgraded: their instances may still run
	closed  bool
}

// NewZygotes returns a set of zygotes whose processes get env.
func NewZygotes(env []string) *Zygotes {
	return &Zygotes{env: env, byPath: map[string]*zygote{}}
}

// Close stops every zygote, and so every instance forked from them.
func (zs *Zygotes) Close() {
	if zs == nil {
		return
	}
	zs.mu.Lock()
	defer zs.mu.Unlock()
	zs.closed = true
	for _, z := range zs.byPath {
		z.stop()
	}
	for _, z := range zs.retired {
		z.stop()
	}
	zs.byPath, zs.retired = map[string]*zygote{}, nil
}

// Prestart starts the zygote of interpreter in the background, so that its
// imports run while the exporter reads its config and resolves its types.
func (zs *Zygotes) Prestart(interpreter string) {
	if zs == nil {
		return
	}
	go func() { _, _ = zs.get(interpreter, "", "") }()
}

// get returns the running zygote of interpreter that may fork instances
// of typ whose code has the hash code, starting one if needed. A zygote
// imports each class once and its instances inherit the import: after the
// class's package changed (pip install -U), a new zygote serves it, and the
// old one stays for the instances it forked.
func (zs *Zygotes) get(interpreter, typ, code string) (*zygote, error) {
	zs.mu.Lock()
	defer zs.mu.Unlock()
	if zs.closed {
		return nil, errors.New("host: the exporter is stopping")
	}
	z := zs.byPath[interpreter]
	if z != nil && !z.isDead() {
		if have, ok := z.code[typ]; !ok || have == code || typ == "" {
			if typ != "" {
				z.code[typ] = code
			}
			return z, nil
		}
		zs.retired = append(zs.retired, z)
	}
	z, err := startZygote(interpreter, typ, zs.env)
	if err != nil {
		return nil, err
	}
	if typ != "" {
		z.code[typ] = code
	}
	zs.byPath[interpreter] = z
	return z, nil
}

type zygote struct {
	interpreter string
	cmd         *exec.Cmd
	conn        *net.UnixConn
	dead        chan struct{}
	said        *stderrTail

	wmu  sync.Mutex        // one request at a time on the socket
	code map[string]string // class -> hash of the code it imported (under Zygotes.mu)

	mu      sync.Mutex
	nextID  int
	spawns  map[int]chan spawnReply
	exits   map[int]chan exitReport
	pending map[int]exitReport // exits reported before their pid was known
}

type spawnReply struct {
	Spawned int    `json:"spawned"`
	Pid     int    `json:"pid"`
	Error   string `json:"error"`
}

type exitReport struct {
	Exit   int  `json:"exit"`
	Code   *int `json:"code"`
	Signal *int `json:"signal"`
}

func (e exitReport) reason() string {
	if e.Signal != nil {
		return "was killed by " + signalName(syscall.Signal(*e.Signal))
	}
	if e.Code != nil {
		return fmt.Sprintf("exited with status %d", *e.Code)
	}
	return "exited"
}

func startZygote(interpreter, preload string, env []string) (*zygote, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("host: zygote socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "zygote"), os.NewFile(uintptr(fds[1]), "zygote-child")
	defer theirs.Close()
	args := []string{"-m", "jumpwire_pyhost", "zygote"}
	if preload != "" {
		args = append(args, "--preload", preload)
	}
	cmd := exec.Command(interpreter, args...)
	hs := protocol.Handshake()
	cmd.Env = append(append([]string(nil), env...), hs.MagicCookieKey+"="+hs.MagicCookieValue, "JUMPWIRE_ZYGOTE_FD=3")
	cmd.ExtraFiles = []*os.File{theirs}
	said := &stderrTail{}
	cmd.Stderr = said
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	onLauncherThread(func() { err = cmd.Start() })
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("host: start the python zygote %s: %w", interpreter, describeStartError(interpreter, err))
	}
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("host: zygote socket: %w", err)
	}
	z := &zygote{
		interpreter: interpreter, cmd: cmd, conn: c.(*net.UnixConn), dead: make(chan struct{}), said: said, code: map[string]string{},
		spawns: map[int]chan spawnReply{}, exits: map[int]chan exitReport{}, pending: map[int]exitReport{},
	}
	go z.read()
	go func() {
		_ = cmd.Wait()
		_ = z.conn.Close()
	}()
	return z, nil
}

func (z *zygote) isDead() bool {
	select {
	case <-z.dead:
		return true
	default:
		return false
	}
}

// read dispatches the zygote's answers until its socket closes.
func (z *zygote) read() {
	defer close(z.dead)
	sc := bufio.NewScanner(z.conn)
	for sc.Scan() {
		var m struct {
			spawnReply
			exitReport
		}
		line := sc.Bytes()
		if json.Unmarshal(line, &m.spawnReply) != nil || json.Unmarshal(line, &m.exitReport) != nil {
			continue
		}
		z.mu.Lock()
		if strings.Contains(string(line), `"spawned"`) {
			if ch := z.spawns[m.Spawned]; ch != nil {
				ch <- m.spawnReply
				delete(z.spawns, m.Spawned)
			}
		} else if m.Exit != 0 {
			if ch := z.exits[m.Exit]; ch != nil {
				ch <- m.exitReport
				delete(z.exits, m.Exit)
			} else {
				z.pending[m.Exit] = m.exitReport
			}
		}
		z.mu.Unlock()
	}
	// The zygote is gone, and its instances with it (their parent-death
	// signal): every instance still watched has exited.
	z.mu.Lock()
	defer z.mu.Unlock()
	for pid, ch := range z.exits {
		sig := int(syscall.SIGKILL)
		ch <- exitReport{Exit: pid, Signal: &sig}
	}
	z.exits = map[int]chan exitReport{}
	for id, ch := range z.spawns {
		ch <- spawnReply{Spawned: id, Error: "the python zygote exited" + z.lastWords()}
	}
	z.spawns = map[int]chan spawnReply{}
}

func (z *zygote) lastWords() string {
	if w := z.said.lastWords(); w != "" {
		return ": " + w
	}
	return ""
}

// spawn forks an instance serving type typ with environment env, its stdout
// and stderr on new pipes. It returns the instance's pid, the read ends of
// its pipes, and a channel that receives its exit.
func (z *zygote) spawn(ctx context.Context, typ string, env []string) (int, *os.File, *os.File, <-chan exitReport, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, nil, nil, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, nil, nil, nil, err
	}
	closeAll := func() {
		for _, f := range []*os.File{outR, outW, errR, errW} {
			f.Close()
		}
	}
	envMap := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			envMap[k] = v
		}
	}
	z.mu.Lock()
	z.nextID++
	id := z.nextID
	reply := make(chan spawnReply, 1)
	z.spawns[id] = reply
	z.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{"spawn": id, "type": typ, "env": envMap})
	z.wmu.Lock()
	_, _, err = z.conn.WriteMsgUnix(append(msg, '\n'), unix.UnixRights(int(outW.Fd()), int(errW.Fd())), nil)
	z.wmu.Unlock()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return 0, nil, nil, nil, fmt.Errorf("host: ask the python zygote to start %s: %w", typ, err)
	}
	var r spawnReply
	select {
	case r = <-reply:
	case <-ctx.Done():
		closeAll()
		return 0, nil, nil, nil, fmt.Errorf("host: the python zygote of %s did not start %s in time (is the machine overloaded?): %w",
			z.interpreter, typ, ctx.Err())
	}
	if r.Error != "" {
		outR.Close()
		errR.Close()
		return 0, nil, nil, nil, fmt.Errorf("host: the python zygote could not start %s: %s", typ, r.Error)
	}
	exited := make(chan exitReport, 1)
	z.mu.Lock()
	if e, ok := z.pending[r.Pid]; ok {
		delete(z.pending, r.Pid)
		exited <- e
	} else if z.isDead() {
		sig := int(syscall.SIGKILL)
		exited <- exitReport{Exit: r.Pid, Signal: &sig}
	} else {
		z.exits[r.Pid] = exited
	}
	z.mu.Unlock()
	return r.Pid, outR, errR, exited, nil
}

func (z *zygote) stop() {
	if z.cmd.Process != nil {
		_ = z.cmd.Process.Signal(syscall.SIGTERM)
	}
	_ = z.conn.Close()
}
