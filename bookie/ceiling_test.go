package bookie

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mq/strata/bookie/journal"
)

// BenchmarkCeiling measures what the two costs beneath a large add over
// gRPC take of this machine's CPU, with nothing of Strata's in the way:
// moving bytes through loopback TCP, and writing them to the disk as the
// journal does (direct write, then fdatasync). On a virtual machine both
// are paid in guest CPU, so their sum per gigabyte bounds how much of the
// raw bandwidth adds sent over gRPC can reach on two cores
// (docs/bookie.md, "what a 64 KiB add over gRPC costs").
func BenchmarkCeiling(b *testing.B) {
	b.Run("loopback-tcp/size=64KiB", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		const size = 64 << 10
		total := int64(b.N) * size
		read := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				read <- err
				return
			}
			defer c.Close()
			_, err = io.CopyBuffer(io.Discard, io.LimitReader(c, total), make([]byte, 256<<10))
			read <- err
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		p := make([]byte, size)
		b.SetBytes(size)
		cpu0 := cpuTime(b)
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(p); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-read; err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		reportCPUPerGB(b, cpuTime(b)-cpu0, total)
	})
	b.Run("direct-write+fdatasync/size=1MiB", func(b *testing.B) {
		// As the raw baseline (rawWriteSync) writes: 1 MiB blocks into
		// segments written with zeros beforehand, each followed by an
		// fdatasync; the zeros are not counted.
		const size, fileBytes = 1 << 20, 1 << 30
		dir := benchDir(b)
		b.SetBytes(size)
		b.ResetTimer()
		var cpu time.Duration
		for done, id := 0, uint32(1); done < b.N; id++ {
			b.StopTimer()
			seg, err := journal.Create(dir, id, fileBytes, true)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, size)
			b.StartTimer()
			cpu0 := cpuTime(b)
			for n := 0; n < fileBytes/size && done < b.N; n, done = n+1, done+1 {
				if err := seg.Append(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := seg.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			cpu += cpuTime(b) - cpu0
			b.StopTimer()
			if err := seg.Remove(dir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.StopTimer()
		reportCPUPerGB(b, cpu, int64(b.N)*size)
	})
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPUPerGB(b *testing.B, cpu time.Duration, bytes int64) {
	b.ReportMetric(cpu.Seconds()/(float64(bytes)/1e9), "cpu-s/GB")
}
