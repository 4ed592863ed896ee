package target

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestStartLocal_StartStopLeavesNothing(t *testing.T) {
	root := tempRoot(t)
	l := startLocal(t, LocalOptions{MaxConnections: 37})
	if filepath.Dir(l.Dir()) != root || !strings.HasPrefix(filepath.Base(l.Dir()), "parity-pg-") {
		t.Errorf("Dir() = %s, want %s/parity-pg-*", l.Dir(), root)
	}

	conn := connect(t, l.ConnString())
	settings := []struct{ name, want string }{
		{"max_connections", "37"},
		{"listen_addresses", "127.0.0.1"},
		{"unix_socket_directories", l.Dir()},
		{"port", strconv.Itoa(l.Port())},
		{"fsync", "off"},
		{"synchronous_commit", "on"},
		{"full_page_writes", "off"},
		{"deadlock_timeout", "50ms"},
	}
	for _, s := range settings {
		var got string
		if err := conn.QueryRow(context.Background(), "SHOW "+s.name).Scan(&got); err != nil {
			t.Fatalf("SHOW %s: %v", s.name, err)
		}
		if got != s.want {
			t.Errorf("%s = %q, want %q", s.name, got, s.want)
		}
	}
	var database, user string
	err := conn.QueryRow(context.Background(), "SELECT current_database(), current_user").
		Scan(&database, &user)
	if err != nil {
		t.Fatalf("query database and user: %v", err)
	}
	if database != "parity" || user != "parity" {
		t.Errorf("connected to database %s as %s, want parity as parity", database, user)
	}
	conn.Close(context.Background())

	// Close must finish its work even when the caller's context has already ended.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Close(cancelled); err != nil {
		t.Fatalf("Close with a cancelled context: %v", err)
	}
	if !isClosed(l.Done()) {
		t.Error("Done() still open after Close")
	}
	if _, err := os.Stat(l.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server directory after Close: stat error %v, want not exist", err)
	}
	waitNoProcessesUnder(t, root)
	assertEmptyDir(t, root)
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}

func TestStartLocal_RunsAsUnprivilegedUserUnderRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the harness is not root here, so the server runs as the harness's own user")
	}
	tempRoot(t)
	l := startLocal(t, LocalOptions{})
	if l.user == nil {
		t.Fatal("running as root but no server user was chosen")
	}

	var backend int
	conn := connect(t, l.ConnString())
	err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&backend)
	if err != nil {
		t.Fatalf("query backend pid: %v", err)
	}
	want := strconv.FormatUint(uint64(l.user.uid), 10)
	for name, pid := range map[string]int{"postmaster": l.proc.pid, "backend": backend} {
		uids := processUIDs(t, pid)
		for _, uid := range uids {
			if uid == "0" || uid != want {
				t.Errorf("%s %d has uids %v, want all %s (%s)", name, pid, uids, want, l.user.name)
				break
			}
		}
	}

	info, err := os.Stat(l.dataDir())
	if err != nil {
		t.Fatalf("stat data directory: %v", err)
	}
	if owner := info.Sys().(*syscall.Stat_t).Uid; owner != l.user.uid {
		t.Errorf("data directory owned by uid %d, want %d (%s)", owner, l.user.uid, l.user.name)
	}
}

func TestStartLocal_UnsearchableTempDirUnderRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the harness is not root here, so the server can reach any directory the harness can")
	}
	root := tempRoot(t)
	if err := os.Chmod(root, 0o700); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	_, err := StartLocal(context.Background(), LocalOptions{Logger: testLogger(t)})
	if err == nil {
		t.Fatal("StartLocal succeeded in a temporary directory the server user cannot search")
	}
	for _, want := range []string{root, "not searchable", "TMPDIR=/tmp"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	assertEmptyDir(t, root)
}

func TestStartLocal_NoServerBinaries(t *testing.T) {
	onlyInitdb := t.TempDir()
	fakeInitdb := filepath.Join(onlyInitdb, "initdb")
	if err := os.WriteFile(fakeInitdb, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatalf("write fake initdb: %v", err)
	}
	tests := []struct {
		name    string
		binDir  string
		envDir  string
		missing string // the binary the message must name
	}{
		{name: "empty BinDir", binDir: t.TempDir(), missing: "initdb"},
		{name: "empty PARITY_PG_BIN", envDir: t.TempDir(), missing: "initdb"},
		{name: "BinDir without postgres", binDir: onlyInitdb, missing: "postgres"},
		{name: "missing BinDir", binDir: "/nonexistent/parity/bin", missing: "initdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tempRoot(t)
			t.Setenv(EnvPGBin, tt.envDir)
			_, err := StartLocal(context.Background(), LocalOptions{BinDir: tt.binDir})
			if !errors.Is(err, ErrNoServerBinaries) {
				t.Fatalf("StartLocal error = %v, want ErrNoServerBinaries", err)
			}
			wants := []string{
				"apt-get install postgresql", "postgresql-server", "brew install postgresql@16",
				EnvPGBin, "--dsn", "PARITY_DSN", "no executable " + tt.missing,
			}
			for _, want := range wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			assertEmptyDir(t, root)
		})
	}
}

func TestStartLocal_InvalidMaxConnections(t *testing.T) {
	for _, n := range []int{-1, 3, maxBackends + 1} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			root := tempRoot(t)
			_, err := StartLocal(context.Background(), LocalOptions{MaxConnections: n})
			if err == nil {
				t.Fatalf("StartLocal accepted MaxConnections %d", n)
			}
			if want := fmt.Sprintf("invalid MaxConnections %d", n); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
			assertEmptyDir(t, root)
		})
	}
}

func TestStartLocal_CancelledStartCleansUp(t *testing.T) {
	// Cancellations spread over the length of one measured start land before initdb, during
	// initdb and while postgres starts; the debug log shows where each landed. A start that
	// finishes before its cancellation is closed normally.
	tempRoot(t)
	begin := time.Now()
	l := startLocal(t, LocalOptions{})
	full := time.Since(begin)
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, percent := range []int{0, 5, 20, 40, 60, 80, 95} {
		delay := full * time.Duration(percent) / 100
		t.Run(fmt.Sprintf("%d%%", percent), func(t *testing.T) {
			root := tempRoot(t)
			ctx, cancel := context.WithCancel(context.Background())
			timer := time.AfterFunc(delay, cancel)
			defer timer.Stop()
			l, err := StartLocal(ctx, LocalOptions{Logger: testLogger(t)})
			cancel()
			switch {
			case err == nil:
				t.Logf("start finished within %v; closing normally", delay)
				if err := l.Close(context.Background()); err != nil {
					t.Fatalf("Close: %v", err)
				}
			case !errors.Is(err, context.Canceled):
				t.Fatalf("StartLocal error = %v, want context.Canceled", err)
			}
			waitNoProcessesUnder(t, root)
			assertEmptyDir(t, root)
		})
	}
}

func TestLocal_DoneClosesWhenServerKilled(t *testing.T) {
	root := tempRoot(t)
	l := startLocal(t, LocalOptions{})
	if isClosed(l.Done()) {
		t.Fatal("Done() closed while the server runs")
	}
	if err := syscall.Kill(l.proc.pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill postmaster: %v", err)
	}
	waitDoneOrFail(t, l.Done(), "after SIGKILL")
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close after the server died: %v", err)
	}
	waitNoProcessesUnder(t, root)
	assertEmptyDir(t, root)
}

func TestLocal_KeepLeavesServerAndHintStopsIt(t *testing.T) {
	root := tempRoot(t)
	l := startLocal(t, LocalOptions{Keep: true})
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if waitClosed(l.Done(), 500*time.Millisecond) {
		t.Fatal("server exited on Close with Keep")
	}

	hint := l.ConnectHint()
	t.Logf("ConnectHint:\n%s", hint)
	if strings.Contains(hint, l.password) {
		t.Fatal("ConnectHint contains the superuser password")
	}
	commands := hintCommands(hint)
	if len(commands) != 3 {
		t.Fatalf("ConnectHint has %d commands, want 3 (socket, TCP, stop)", len(commands))
	}
	for i, name := range []string{"socket", "TCP"} {
		out, err := exec.Command("sh", "-c", commands[i]+" -Atc 'SELECT 40 + 2'").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "42" {
			t.Errorf("%s command %q: output %q, error %v; want 42", name, commands[i], out, err)
		}
	}

	if out, err := exec.Command("sh", "-c", commands[2]).CombinedOutput(); err != nil {
		t.Fatalf("stop command %q: %v\n%s", commands[2], err, out)
	}
	waitDoneOrFail(t, l.Done(), "after the hint's stop command")
	waitNoProcessesUnder(t, root)
	assertEmptyDir(t, root)
}

// hintCommands returns the indented lines of a ConnectHint: the commands.
func hintCommands(hint string) []string {
	var commands []string
	for _, line := range strings.Split(hint, "\n") {
		if cmd, ok := strings.CutPrefix(line, "  "); ok {
			commands = append(commands, cmd)
		}
	}
	return commands
}

func TestLocal_Connections(t *testing.T) {
	tempRoot(t)
	l := startLocal(t, LocalOptions{})
	ctx := context.Background()

	t.Run("pool config", func(t *testing.T) {
		if _, err := l.PoolConfig(0); err == nil {
			t.Error("PoolConfig(0) succeeded, want an error")
		}
		cfg, err := l.PoolConfig(3)
		if err != nil {
			t.Fatalf("PoolConfig: %v", err)
		}
		if cfg.MaxConns != 3 {
			t.Errorf("MaxConns = %d, want 3", cfg.MaxConns)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("open pool: %v", err)
		}
		defer pool.Close()
		if err := pool.Ping(ctx); err != nil {
			t.Errorf("ping: %v", err)
		}
	})

	tcp := fmt.Sprintf("host=127.0.0.1 port=%d user=parity dbname=parity sslmode=disable", l.Port())
	t.Run("TCP with password", func(t *testing.T) {
		conn := connect(t, tcp+" password="+l.password)
		if err := conn.Ping(ctx); err != nil {
			t.Errorf("ping: %v", err)
		}
	})
	t.Run("TCP with wrong password", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, tcp+" password=wrong")
		if err == nil {
			conn.Close(ctx)
			t.Fatal("connected over TCP with a wrong password")
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Errorf("error = %v, want SQLSTATE 28P01 invalid_password", err)
		}
	})

	t.Run("no secret in output", func(t *testing.T) {
		for name, text := range map[string]string{
			"Describe": l.Describe(), "ConnString": l.ConnString(), "ConnectHint": l.ConnectHint(),
		} {
			if strings.Contains(text, l.password) {
				t.Errorf("%s contains the superuser password", name)
			}
		}
		if !strings.Contains(l.Describe(), l.Dir()) || !strings.Contains(l.Describe(), l.version) {
			t.Errorf("Describe() = %q, want the directory and version %s", l.Describe(), l.version)
		}
		if l.Kind() != PostgreSQL {
			t.Errorf("Kind() = %v, want postgresql", l.Kind())
		}
	})
}

// helperEnv makes the test binary act as a harness that starts a server and waits to be
// killed, for TestStartLocal_ServerDiesWithHarness.
const helperEnv = "PARITY_TARGET_TEST_HARNESS"

func TestStartLocal_ServerDiesWithHarness(t *testing.T) {
	if os.Getenv(helperEnv) == "1" {
		runHarnessHelper()
		return
	}
	root := tempRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestStartLocal_ServerDiesWithHarness$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = t.Output()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start harness: %v", err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read server pid from harness: %v", err)
	}
	var pid int
	if _, err := fmt.Sscanf(line, "server pid %d", &pid); err != nil {
		t.Fatalf("harness printed %q: %v", line, err)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill harness: %v", err)
	}
	cmd.Wait()
	waitNoProcessesUnder(t, root)
	if alive(pid) {
		t.Errorf("server %d still runs after its harness was killed", pid)
	}
}

// runHarnessHelper starts a server, prints its pid and waits to be killed.
func runHarnessHelper() {
	l, err := StartLocal(context.Background(), LocalOptions{})
	if err != nil {
		fmt.Println("start failed:", err)
		os.Exit(1)
	}
	fmt.Printf("server pid %d\n", l.proc.pid)
	time.Sleep(time.Minute)
	os.Exit(1)
}

// alive reports whether process pid exists and is not a zombie waiting to be reaped, which in
// a container may take a while when process 1 is not an init.
func alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func TestLocal_RetriesWhenPortTaken(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer listener.Close()
	takenPort := listener.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name       string
		takenTimes int // how many launches get the taken port
		wantErr    bool
	}{
		{"taken once", 1, false},
		{"taken every time", bindAttempts, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tempRoot(t)
			ctx := context.Background()
			l, err := newLocal(LocalOptions{Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("newLocal: %v", err)
			}
			if err := l.makeDir(); err != nil {
				t.Fatalf("makeDir: %v", err)
			}
			if err := l.initdb(ctx); err != nil {
				l.discard()
				t.Fatalf("initdb: %v", err)
			}

			calls := 0
			choosePort := func() (int, error) {
				calls++
				if calls <= tt.takenTimes {
					return takenPort, nil
				}
				return freePort()
			}
			err = l.launchUntilReady(ctx, choosePort)
			l.discard()

			if tt.wantErr {
				if !errors.Is(err, errPortTaken) {
					t.Errorf("launchUntilReady error = %v, want errPortTaken", err)
				}
			} else if err != nil {
				t.Errorf("launchUntilReady: %v", err)
			} else if l.port == takenPort {
				t.Errorf("server got the taken port %d", takenPort)
			}
			if want := min(tt.takenTimes+1, bindAttempts); calls != want {
				t.Errorf("ports chosen %d times, want %d", calls, want)
			}
			waitNoProcessesUnder(t, root)
			assertEmptyDir(t, root)
		})
	}
}

// BenchmarkStartLocal measures starting a throwaway server until it accepts connections, and
// stopping and removing it again.
func BenchmarkStartLocal(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		l, err := StartLocal(ctx, LocalOptions{})
		if err != nil {
			b.Fatalf("StartLocal: %v", err)
		}
		if err := l.Close(ctx); err != nil {
			b.Fatalf("Close: %v", err)
		}
	}
}
