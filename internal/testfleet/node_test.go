package testfleet

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// slowSSHD accepts connections and sends each a banner after delay (never,
// if delay is negative), counting the connections it accepted.
func slowSSHD(t *testing.T, delay time.Duration) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				if delay < 0 {
					c.Read(make([]byte, 1))
					return
				}
				time.Sleep(delay)
				c.Write([]byte("SSH-2.0-slow\r\n"))
				c.Read(make([]byte, 1))
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

func TestSendsBanner(t *testing.T) {
	tests := []struct {
		name     string
		delay    time.Duration // before the banner; negative: none comes
		timeout  time.Duration
		want     bool
		accepted int32
	}{
		// A loaded machine's sshd may take seconds to re-exec for a new
		// connection: the probe must wait on that connection, not give
		// up and open another (each one more fork for sshd).
		{"slow banner on one connection", 1500 * time.Millisecond, 10 * time.Second, true, 1},
		{"prompt banner", 0, 10 * time.Second, true, 1},
		{"no banner before the deadline", -1, 300 * time.Millisecond, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, accepted := slowSSHD(t, tt.delay)
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			if got := sendsBanner(ctx, addr); got != tt.want {
				t.Errorf("sendsBanner = %v, want %v", got, tt.want)
			}
			if got := accepted.Load(); got != tt.accepted {
				t.Errorf("sshd accepted %d connections, want %d", got, tt.accepted)
			}
		})
	}
}

func TestSendsBannerRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if sendsBanner(context.Background(), addr) {
		t.Errorf("sendsBanner(%s) with nothing listening = true", addr)
	}
}
