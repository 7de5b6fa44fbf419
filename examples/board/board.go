package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"
)

const (
	// kernel is the Linux release the board pretends to run.
	kernel = "6.6.23-jumpwire"
	// maxLine bounds a typed line; further characters are refused with a bell.
	maxLine = 1024
)

// bootLog is what the board prints while it boots: %[1]s is its name, %[2]s
// the kernel release. Lines end in \n here and in \r\n on the console.
const bootLog = `
U-Boot 2024.01-jumpwire (Mar 15 2024 - 12:00:00 +0000)

DRAM:  512 MiB
Starting kernel ...

[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd083]
[    0.000000] Linux version %[2]s (builder@jumpwire) #1 SMP PREEMPT
[    0.000000] Machine model: Jumpwire demo board
[    0.412345] Serial: AMBA PL011 UART driver
[    1.023456] Run /sbin/init as init process
Starting syslogd: OK
Starting network: OK

Jumpwire Demo Linux 1.0 %[1]s ttyAMA0

`

// shutdownLog is what the board prints when it reboots.
const shutdownLog = `Stopping network: OK
Stopping syslogd: OK
The system is going down NOW!
Sent SIGTERM to all processes
reboot: Restarting system
`

const cpuinfo = `processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU part	: 0xd08

Hardware	: Jumpwire demo board
Model		: Jumpwire demo board rev 1.0
`

const help = `commands: help, uname [-a|-s|-n|-r|-m], uptime, cat FILE..., echo [TEXT],
          reboot, exit, logout
files:    /proc/cpuinfo, /proc/version, /etc/hostname
`

// crlf turns \n line endings into the \r\n a terminal in raw mode needs.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// board is the simulated board: when it booted, who is logged in on its
// console and the line being typed there. The console feeds it input and the
// HTTP service reads its status, so its methods are safe for concurrent use.
type board struct {
	name string

	mu     sync.Mutex
	booted time.Time
	boots  int
	user   string // who is logged in; "" at the login prompt
	line   []byte // the line being typed
	cr     bool   // the last byte was \r: a \n right after it ends the same line
	esc    bool   // inside an escape sequence (arrow keys...), which is ignored
}

// newBoard returns a board named name that has just booted.
func newBoard(name string) *board {
	return &board{name: name, booted: time.Now(), boots: 1}
}

// banner returns what the board printed on its console while booting, up to
// its login prompt.
func (b *board) banner() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out bytes.Buffer
	b.bootLog(&out)
	return out.Bytes()
}

// input handles bytes typed on the console and returns the board's answer,
// echo included. The terminal is raw: \r or \n ends a line (\r\n counts
// once), DEL and BS erase, Ctrl-C drops the line, Ctrl-D logs out.
func (b *board) input(p []byte) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out bytes.Buffer
	for _, c := range p {
		afterCR := b.cr
		b.cr = c == '\r'
		switch {
		case b.esc: // an escape sequence ends with a letter other than its [ or O
			b.esc = c < 0x40 || c > 0x7e || c == '[' || c == 'O'
		case c == 0x1b:
			b.esc = true
		case c == '\n' && afterCR:
		case c == '\r' || c == '\n':
			line := string(b.line)
			b.line = b.line[:0]
			out.WriteString("\r\n")
			b.enter(&out, line)
		case c == 0x7f || c == '\b':
			if len(b.line) > 0 {
				b.line = b.line[:len(b.line)-1]
				out.WriteString("\b \b")
			}
		case c == 0x03: // Ctrl-C
			b.line = b.line[:0]
			out.WriteString("^C\r\n")
			b.prompt(&out)
		case c == 0x04 && b.user != "" && len(b.line) == 0: // Ctrl-D
			b.logout(&out)
		case c < 0x20: // other control characters
		case len(b.line) >= maxLine:
			out.WriteByte('\a')
		default:
			b.line = append(b.line, c)
			out.WriteByte(c)
		}
	}
	return out.Bytes()
}

// hangup handles the console's other end going away: like getty, the board
// logs the user out, so whoever opens the console next finds a login prompt.
// It returns the board's output, nil if it was at an empty login prompt.
func (b *board) hangup() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.user == "" && len(b.line) == 0 {
		return nil
	}
	b.user, b.line = "", b.line[:0]
	var out bytes.Buffer
	out.WriteString("\r\n\r\n")
	b.prompt(&out)
	return out.Bytes()
}

// status describes the board for its HTTP service.
func (b *board) status() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	console := "at the login prompt"
	if b.user != "" {
		console = b.user + " is logged in"
	}
	return fmt.Sprintf("hello from the demo board\nname: %s\npower: on\nuptime: %s\nboots: %d\nconsole: %s\n",
		b.name, time.Since(b.booted).Round(time.Second), b.boots, console)
}

// The methods below write to out and expect b.mu held.

func (b *board) bootLog(out *bytes.Buffer) {
	fmt.Fprintf(out, crlf(bootLog), b.name, kernel)
	b.prompt(out)
}

func (b *board) prompt(out *bytes.Buffer) {
	switch b.user {
	case "":
		fmt.Fprintf(out, "%s login: ", b.name)
	case "root":
		fmt.Fprintf(out, "root@%s:~# ", b.name)
	default:
		fmt.Fprintf(out, "%s@%s:~$ ", b.user, b.name)
	}
}

func (b *board) logout(out *bytes.Buffer) {
	b.user = ""
	out.WriteString("logout\r\n\r\n")
	b.prompt(out)
}

// enter runs a line typed at the login prompt (any user name logs in, no
// password asked) or at the shell prompt.
func (b *board) enter(out *bytes.Buffer, line string) {
	args := strings.Fields(line)
	if b.user == "" {
		if len(args) > 0 {
			b.user = args[0]
			fmt.Fprintf(out, "Welcome to Jumpwire Demo Linux on %s. Type help for the commands.\r\n", b.name)
		}
		b.prompt(out)
		return
	}
	if len(args) == 0 {
		b.prompt(out)
		return
	}
	switch args[0] {
	case "help":
		out.WriteString(crlf(help))
	case "uname":
		out.WriteString(b.uname(strings.Join(args[1:], " ")) + "\r\n")
	case "uptime":
		up := time.Since(b.booted)
		upText := fmt.Sprintf("%d min", int(up.Minutes()))
		if up >= time.Hour {
			upText = fmt.Sprintf("%d:%02d", int(up.Hours()), int(up.Minutes())%60)
		}
		fmt.Fprintf(out, " %s up %s,  1 user,  load average: 0.00, 0.01, 0.05\r\n", time.Now().Format("15:04:05"), upText)
	case "cat":
		b.cat(out, args[1:])
	case "echo":
		out.WriteString(strings.NewReplacer(`"`, "", `'`, "").Replace(strings.Join(args[1:], " ")) + "\r\n")
	case "reboot":
		out.WriteString(crlf(shutdownLog))
		b.booted, b.boots, b.user = time.Now(), b.boots+1, ""
		b.bootLog(out)
		return
	case "exit", "logout":
		b.logout(out)
		return
	default:
		fmt.Fprintf(out, "sh: %s: not found\r\n", args[0])
	}
	b.prompt(out)
}

func (b *board) uname(flags string) string {
	switch flags {
	case "", "-s":
		return "Linux"
	case "-n":
		return b.name
	case "-r":
		return kernel
	case "-m":
		return "aarch64"
	case "-a":
		return fmt.Sprintf("Linux %s %s #1 SMP PREEMPT Fri Mar 15 12:00:00 UTC 2024 aarch64 GNU/Linux", b.name, kernel)
	}
	return "usage: uname [-a|-s|-n|-r|-m]"
}

func (b *board) cat(out *bytes.Buffer, files []string) {
	if len(files) == 0 {
		out.WriteString("usage: cat FILE...\r\n")
	}
	for _, f := range files {
		switch f {
		case "/proc/cpuinfo":
			out.WriteString(crlf(cpuinfo))
		case "/proc/version":
			fmt.Fprintf(out, "Linux version %s (builder@jumpwire) #1 SMP PREEMPT\r\n", kernel)
		case "/etc/hostname":
			out.WriteString(b.name + "\r\n")
		default:
			fmt.Fprintf(out, "cat: %s: No such file or directory\r\n", f)
		}
	}
}
