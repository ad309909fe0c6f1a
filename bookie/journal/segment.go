package journal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Segment is one journal file. Append and Sync are called by one writer at
// a time; ReadAt may be called concurrently with them.
type Segment struct {
	ID   uint32
	f    *os.File
	path string

	// Appends go through w, opened with O_DIRECT when the file system
	// allows it (see Append); else w is f.
	w    *os.File
	end  int64  // where the next Append goes
	tail []byte // direct: the bytes of the page holding end, before end
	abuf []byte // direct: page-aligned write buffer
}

// pageSize is the alignment of direct writes: offsets, lengths and buffers.
const pageSize = 4096

// Name returns the file name of segment id.
func Name(id uint32) string { return fmt.Sprintf("%08x.log", id) }

// List returns the ids of the segments in dir, ascending.
func List(dir string) ([]uint32, error) { return listIDs(dir, ".log") }

// listIDs returns the ids of the files in dir named "%08x" + suffix,
// ascending.
func listIDs(dir, suffix string) ([]uint32, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), suffix)
		if !ok || len(name) != 8 {
			continue
		}
		id, err := strconv.ParseUint(name, 16, 32)
		if err != nil || id == 0 {
			continue
		}
		out = append(out, uint32(id))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Create makes a new segment of size bytes, preallocated and, if zero is
// set and direct I/O is possible (Direct), written with zeros in full; it
// fsyncs the file and the directory so the file survives a crash. On
// failure the file is removed, so that the id can be created again.
//
// Why write zeros: a preallocated range is "unwritten" to ext4 and XFS,
// so the first write into each part of it changes the file's extent map,
// and every fdatasync after it must also commit the file system's journal,
// a second write and cache flush. Over blocks already written, fdatasync
// has only the data to flush: twice the 4 KiB write+fdatasync rate and
// half its latency on this project's disk (docs/bookie.md). PostgreSQL
// fills new WAL files with zeros for the same reason (wal_init_zero). The
// cost is writing the segment twice, which a journal writing near the
// disk's bandwidth cannot afford: the bookie decides (prewriteNext).
func Create(dir string, id uint32, size int64, zero bool) (_ *Segment, err error) {
	p := filepath.Join(dir, Name(id))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	s := &Segment{ID: id, f: f, path: p, w: f}
	defer func() {
		if err != nil {
			s.Close()
			os.Remove(p)
		}
	}()
	if size > 0 {
		if err := s.preallocate(0, size); err != nil {
			return nil, err
		}
	}
	// Direct writes skip the page cache: no page to allocate and copy into
	// for every group (costly on some virtual machines, docs/bookie.md),
	// and the fdatasync that follows has only the device cache to flush.
	// tmpfs and some other file systems refuse O_DIRECT: buffered then, and
	// never written with zeros (that would fill the page cache with them).
	if w, err := os.OpenFile(p, os.O_WRONLY|unix.O_DIRECT, 0); err == nil {
		s.w = w
		if zero {
			if err := writeZeros(w, size&^(pageSize-1)); err != nil {
				return nil, fmt.Errorf("journal: write zeros into %s: %w", p, err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := SyncDir(dir); err != nil {
		return nil, err
	}
	return s, nil
}

// zeroChunk is the page-aligned block of zeros Create writes with. Direct
// writes only read it, so every caller shares one.
var zeroChunk = sync.OnceValue(func() []byte { return alignedBuffer(1 << 20) })

// writeZeros writes zeros over [0, n) of a direct-I/O file; n is a
// multiple of pageSize.
func writeZeros(w *os.File, n int64) error {
	z := zeroChunk()
	for off := int64(0); off < n; off += int64(len(z)) {
		if _, err := w.WriteAt(z[:min(int64(len(z)), n-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// FreeName is the file name of a segment set aside for reuse (Free), by the
// id it had.
func FreeName(id uint32) string { return fmt.Sprintf("%08x.free", id) }

// ListFree returns the ids of the segments in dir set aside for reuse,
// ascending.
func ListFree(dir string) ([]uint32, error) { return listIDs(dir, ".free") }

// Free closes the segment and renames its file to FreeName(s.ID), to be
// reused by Recycle, and fsyncs dir. The caller frees only a sealed
// segment of seeded records (Seeded) that no index refers to: its records
// must not pass for records of the id it gets next.
func (s *Segment) Free(dir string) error {
	s.Close()
	if err := renameNoReplace(s.path, filepath.Join(dir, FreeName(s.ID))); err != nil {
		return err
	}
	return SyncDir(dir)
}

// renameNoReplace renames from to to, failing if to exists (a free file
// and a segment sharing an id would be a bug, and overwriting the free
// one could hide it): renameat2's RENAME_NOREPLACE where the file system
// has it, else a check before an ordinary rename.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if _, serr := os.Lstat(to); serr == nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
		}
		return os.Rename(from, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// ErrFreeID: Recycle was asked to give a free segment an id not above the
// one it had, under which its old records could pass for new ones.
var ErrFreeID = errors.New("journal: a free segment must get a higher id than it had")

// Recycle makes free segment old (FreeName(old) in dir) segment id, of
// size bytes, and opens it for writing like Create. Its first page is
// written with zeros and made durable before the file takes its new name,
// so that it reads as Unwritten until a group of its own is durable. The
// rest keeps the records of the file's earlier uses: blocks already
// written, so an fdatasync after a group has no extent map to commit
// (Create says why that matters), and nothing had to be written to get
// them. Those records carry CRCs seeded with ids up to old, so they fail
// under id, which must be higher (ErrFreeID). On any other failure the
// file is removed.
func Recycle(dir string, old, id uint32, size int64) (_ *Segment, err error) {
	if id <= old {
		return nil, ErrFreeID
	}
	from := filepath.Join(dir, FreeName(old))
	f, err := os.OpenFile(from, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	s := &Segment{ID: id, f: f, path: from, w: f}
	defer func() {
		if err != nil {
			s.Close()
			os.Remove(s.path)
		}
	}()
	if cur, err := s.Size(); err != nil {
		return nil, err
	} else if cur > size {
		if err := f.Truncate(size); err != nil {
			return nil, err
		}
	} else if cur < size {
		if err := s.preallocate(0, size); err != nil {
			return nil, err
		}
	}
	if w, err := os.OpenFile(from, os.O_WRONLY|unix.O_DIRECT, 0); err == nil {
		s.w = w
	}
	if _, err := s.w.WriteAt(zeroChunk()[:pageSize], 0); err != nil {
		return nil, fmt.Errorf("journal: clear the first page of %s: %w", from, err)
	}
	if _, err := s.Sync(); err != nil {
		return nil, err
	}
	s.path = filepath.Join(dir, Name(id))
	if err := renameNoReplace(from, s.path); err != nil {
		s.path = from
		return nil, err
	}
	if err := SyncDir(dir); err != nil {
		return nil, err
	}
	return s, nil
}

// Open opens an existing segment for reading and truncation.
func Open(dir string, id uint32) (*Segment, error) {
	p := filepath.Join(dir, Name(id))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &Segment{ID: id, f: f, path: p, w: f}, nil
}

// ReadAll reads the whole file (for the recovery scan).
func (s *Segment) ReadAll() ([]byte, error) { return os.ReadFile(s.path) }

// Size returns the file's size (its preallocated size while it is written).
func (s *Segment) Size() (int64, error) {
	fi, err := s.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Unwritten reports whether the segment's first page holds only zeros,
// which means no record in it was ever made durable: its first group
// starts at offset 0, every later group is written after that write
// returned, so an fdatasync that covered any record covered the first one
// too. Reading one page, not the whole file, matters since segments may be
// written with zeros in full when created.
func (s *Segment) Unwritten() (bool, error) {
	buf := make([]byte, pageSize)
	n, err := s.f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return allZero(buf[:n]), nil
}

// ReadAt reads len(p) bytes at off.
func (s *Segment) ReadAt(p []byte, off int64) error {
	_, err := s.f.ReadAt(p, off)
	return err
}

// Append writes p at the end of what was appended so far, with one system
// call (or a few for a huge p). With direct I/O the write must cover whole
// pages: it starts at the page holding the end, repeating the bytes already
// written there, and fills the last page with zeros. The repeated bytes are
// identical to what the disk holds, so a write torn by a crash cannot damage
// a record written before; the zeros are what follows the data of a segment
// anyway, until the next Append overwrites them.
func (s *Segment) Append(p []byte) error {
	return s.AppendWith(len(p), func(dst []byte) { copy(dst, p) })
}

// AppendWith appends the n bytes encode writes into dst (len(dst) == n),
// as Append does. With direct I/O dst lies in the page-aligned buffer the
// write is made from, so a group is encoded where it is written from
// instead of being copied there: one copy of every byte fewer on the
// writer's path, which at the disk's bandwidth is a tenth of its time.
func (s *Segment) AppendWith(n int, encode func(dst []byte)) error {
	if !s.Direct() {
		// Through the page cache, from the end of the data, followed by
		// zeros up to the end of its page as a direct write leaves them:
		// past the data of a recycled segment lie its earlier use's
		// bytes, which would make a clean end read as torn.
		total := int((s.end+int64(n)+pageSize-1)&^(pageSize-1) - s.end)
		if cap(s.abuf) < total {
			s.abuf = make([]byte, total+total/4)
		}
		buf := s.abuf[:total]
		encode(buf[:n:n])
		clear(buf[n:])
		if _, err := s.w.WriteAt(buf, s.end); err != nil {
			return err
		}
		s.end += int64(n)
		return nil
	}
	end := len(s.tail) + n
	total := (end + pageSize - 1) &^ (pageSize - 1)
	if cap(s.abuf) < total {
		s.abuf = alignedBuffer(total + total/4)
	}
	buf := s.abuf[:total]
	copy(buf, s.tail)
	encode(buf[len(s.tail):end:end])
	clear(buf[end:])
	start := s.end - int64(len(s.tail))
	if _, err := s.w.WriteAt(buf, start); err != nil {
		return err
	}
	s.end += int64(n)
	keep := int(s.end & (pageSize - 1))
	s.tail = append(s.tail[:0], buf[end-keep:end]...)
	return nil
}

// Seal is called when the writer moves to the next segment: it closes the
// direct-I/O descriptor and drops the write buffers, which a sealed segment
// has no use for (every segment of a journal would otherwise hold a
// descriptor and up to a group's worth of memory). An Append after it, if
// any, goes through the page cache.
func (s *Segment) Seal() {
	if s.w != s.f {
		s.w.Close()
	}
	s.w, s.tail, s.abuf = s.f, nil, nil
}

// Resume sets where the next Append goes, in a segment opened with Open:
// end, the end of its data. Appends then go through the page cache. It
// preallocates room up to size, if the disk has it (best effort: the
// caller writes little).
func (s *Segment) Resume(end, size int64) {
	s.end = end
	if size > end {
		_ = s.preallocate(end, size-end)
	}
}

// preallocate allocates [off, off+n) of the file. A file system without
// fallocate is not an error: it only pays for growing the file on each
// group.
func (s *Segment) preallocate(off, n int64) error {
	if err := unix.Fallocate(int(s.f.Fd()), 0, off, n); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("journal: preallocate %s: %w", s.path, err)
	}
	return nil
}

// DropBufferOver drops the write buffer if it holds more than limit
// bytes, so that one outsized group does not pin its size for the
// segment's life; the next append allocates what it needs.
func (s *Segment) DropBufferOver(limit int) {
	if cap(s.abuf) > limit {
		s.abuf = nil
	}
}

// Direct reports whether appends use direct I/O (until Seal).
func (s *Segment) Direct() bool { return s.w != s.f }

// End is where the next Append goes: the end of the data appended so far.
func (s *Segment) End() int64 { return s.end }

// alignedBuffer returns n bytes whose address is a multiple of pageSize.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+pageSize)
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & (pageSize - 1))
	return b[skip : skip+n : skip+n]
}

// Sync makes every write so far durable (fdatasync). It returns how long
// it took, so callers can warn about slow disks.
func (s *Segment) Sync() (time.Duration, error) {
	start := time.Now()
	err := unix.Fdatasync(int(s.f.Fd()))
	return time.Since(start), err
}

// Truncate cuts the file at off and makes that durable: used to drop a torn
// tail. Preallocated space after off is given back.
func (s *Segment) Truncate(off int64) error {
	if err := s.f.Truncate(off); err != nil {
		return err
	}
	return s.f.Sync()
}

// Close closes the file.
func (s *Segment) Close() error {
	if s.w != s.f {
		s.w.Close()
	}
	return s.f.Close()
}

// Remove closes and deletes the segment file and fsyncs dir.
func (s *Segment) Remove(dir string) error {
	s.Close()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that file creations, renames and removals
// in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteFileSync replaces file name in dir with data durably: written to a
// temporary file, fsync'd, renamed over name, and dir fsync'd, so that a
// crash leaves the old content or the new, never a part.
func WriteFileSync(dir, name string, data []byte, perm os.FileMode) error {
	final := filepath.Join(dir, name)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		return err
	}
	return SyncDir(dir)
}
