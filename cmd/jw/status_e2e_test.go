package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestStatusWatch: jw status -w prints every status version, in order and none skipped,
// although end-session makes two changes at once, and a driver's crash and restart.
func TestStatusWatch(t *testing.T) {
	jw := jwBinary(t)
	exporter, host := jwRun(t, jw, e2eConfig, 2)

	watch := exec.Command(jw, "--host", host, "status", "-w", "-o", "json")
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watch.Process.Kill(); _ = watch.Wait() })
	type event struct {
		Event, Status, Path, Message string
		Version                      uint64
		Fields                       map[string]string
	}
	events := make(chan event, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("jw status -w printed %q: %v", sc.Text(), err)
				return
			}
			events <- e
		}
	}()
	next := func(what string) event {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("jw status -w ended before %s", what)
			}
			return e
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s from jw status -w", what)
		}
		return event{}
	}

	first := next("first status")
	if first.Event != "status" || first.Status != "LEASE_READY" {
		t.Fatalf("first line %+v, want the LEASE_READY status", first)
	}
	jwClient(t, jw, host, "end-session")
	for i, want := range []string{"AVAILABLE", "LEASE_READY"} {
		e := next("status after end-session")
		for e.Event == "driver" { // the old session's drivers stopping
			e = next("status after end-session")
		}
		if e.Event != "status" || e.Status != want || e.Version != first.Version+uint64(i)+1 {
			t.Fatalf("after end-session, line %d is %+v; want status %s version %d", i+1, e, want, first.Version+uint64(i)+1)
		}
	}

	waitFor(t, "the new session's plugins", func() bool { return len(pluginPids(t, exporter.Process.Pid)) == 2 })
	pid := pluginPids(t, exporter.Process.Pid)[0]
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exited, restarted bool
	for !exited || !restarted {
		e := next("driver events after the kill")
		switch {
		case e.Event != "driver":
			t.Fatalf("unexpected line %+v", e)
		case e.Message == "driver process exited; restarting":
			exited = true
		case e.Message == "driver restarted":
			restarted = e.Fields["restarts"] == "1"
		}
	}
}
