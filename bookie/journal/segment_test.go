package journal

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A segment created with zeros has all its blocks written, not merely
// allocated, so that an fdatasync after a group has no extent map to
// commit; either way its bytes read as zeros and its size is the one asked
// for. Checked with the FIEMAP ioctl, which flags extents the file system
// still holds as unwritten (and, as a check of the check, does flag them
// in a segment created without zeros).
func TestSegmentCreatedWithZerosHasNoUnwrittenExtent(t *testing.T) {
	for _, zero := range []bool{true, false} {
		t.Run(fmt.Sprintf("zeros=%v", zero), func(t *testing.T) { checkExtents(t, zero) })
	}
}

func checkExtents(t *testing.T, zero bool) {
	const size = 1<<20 + 3000 // not a whole number of pages
	dir := t.TempDir()
	s, err := Create(dir, 1, size, zero)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Size(); err != nil || got != size {
		t.Fatalf("size %d (%v), want %d", got, err, size)
	}
	if data, err := s.ReadAll(); err != nil || !allZero(data) {
		t.Fatalf("a new segment is not all zeros (%v)", err)
	}
	if !s.Direct() {
		t.Skip("the file system refuses O_DIRECT; segments are preallocated only")
	}
	exts, err := fiemap(s.f)
	if err != nil {
		t.Skipf("FIEMAP: %v", err)
	}
	if len(exts) == 0 {
		t.Fatal("FIEMAP reports no extent at all")
	}
	unwritten := false
	for _, e := range exts {
		if e.unwritten && e.logical < size&^(pageSize-1) {
			unwritten = true
			if zero {
				t.Fatalf("extent at %d (%d bytes) is still unwritten", e.logical, e.length)
			}
		}
	}
	if !zero && !unwritten {
		t.Skip("this file system reports no unwritten extent for preallocated space")
	}
}

type extent struct {
	logical, length int64
	unwritten       bool
}

// fiemap returns the file's extents (linux/fiemap.h).
func fiemap(f *os.File) ([]extent, error) {
	const (
		fsIocFiemap     = 0xC020660B // _IOWR('f', 11, struct fiemap)
		flagSync        = 0x1
		extentLast      = 0x1
		extentUnwritten = 0x800
		headerSize      = 32
		extentSize      = 56
		extentsPerRound = 64
	)
	var out []extent
	buf := make([]byte, headerSize+extentsPerRound*extentSize)
	for start := uint64(0); ; {
		clear(buf)
		le := binary.LittleEndian
		le.PutUint64(buf[0:], start)
		le.PutUint64(buf[8:], ^uint64(0))
		le.PutUint32(buf[16:], flagSync)
		le.PutUint32(buf[24:], extentsPerRound)
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
			return nil, errno
		}
		n := int(le.Uint32(buf[20:]))
		if n == 0 {
			return out, nil
		}
		for i := range n {
			e := buf[headerSize+i*extentSize:]
			logical, length, flags := le.Uint64(e[0:]), le.Uint64(e[16:]), le.Uint32(e[40:])
			out = append(out, extent{int64(logical), int64(length), flags&extentUnwritten != 0})
			start = logical + length
			if flags&extentLast != 0 {
				return out, nil
			}
		}
	}
}
