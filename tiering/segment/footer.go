package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v15/arrow/ipc"
)

// Arrow's file reader trusts the footer's flatbuffer: it sizes slices from
// the vector lengths it declares (the schema's fields, a field's children,
// metadata) before anything is checked, so a corrupt or foreign object could
// ask for hundreds of gigabytes and end the process, which no recover can
// catch. openFile therefore reads the footer itself first and walks it with
// every offset and length checked against its bytes, and hands it to Arrow
// only if its schema has exactly the shape of Schema().

// trailerBytes is the end of an Arrow file: the footer's length (int32)
// and the magic "ARROW1".
const trailerBytes = 10

// Flatbuffer slots (Arrow's File.fbs and Schema.fbs) the walk reads.
const (
	footerSchema, footerDictionaries, footerRecordBatches, footerMetadata = 1, 2, 3, 4
	schemaFields, schemaMetadata, schemaFeatures                          = 1, 2, 3
	fieldName, fieldTypeType, fieldType, fieldDictionary                  = 0, 2, 3, 4
	fieldChildren, fieldMetadata                                          = 5, 6
	blockBytes                                                            = 24 // struct Block: offset, metaDataLength (padded), bodyLength
)

// Limits that no segment footer comes near; they bound the walk, and so
// Arrow's, on a footer whose tables point at each other.
const (
	maxFieldDepth = 8
	maxFields     = 256
)

// openFile opens an Arrow file whose footer has been checked first.
func openFile(r ipc.ReadAtSeeker) (fr *ipc.FileReader, err error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, corrupt("open file: %v", err)
	}
	tail, err := readTail(r, size)
	if err != nil {
		return nil, err
	}
	if err := checkFooter(tail[:len(tail)-trailerBytes]); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			fr, err = nil, corrupt("open file: %v", p)
		}
	}()
	fr, err = ipc.NewFileReader(&tailReader{ReadAtSeeker: r, tail: tail, start: size - int64(len(tail))})
	if err != nil {
		return nil, corrupt("open file: %v", err)
	}
	return fr, nil
}

// readTail reads the trailer, then the footer before it, as Arrow would:
// two reads.
func readTail(r io.ReaderAt, size int64) ([]byte, error) {
	if size < 2*int64(len(ipc.Magic))+4 {
		return nil, corrupt("open file: %d bytes, too small for an Arrow file", size)
	}
	trailer := make([]byte, trailerBytes)
	if _, err := r.ReadAt(trailer, size-trailerBytes); err != nil && err != io.EOF {
		return nil, corrupt("open file: read trailer: %v", err)
	}
	if !bytes.Equal(trailer[4:], ipc.Magic) {
		return nil, corrupt("open file: not an Arrow file")
	}
	n := int64(binary.LittleEndian.Uint32(trailer))
	if n <= 0 || n+int64(len(ipc.Magic))+trailerBytes > size {
		return nil, corrupt("open file: footer of %d bytes in a %d-byte file", n, size)
	}
	tail := make([]byte, n+trailerBytes)
	if _, err := r.ReadAt(tail[:n], size-int64(len(tail))); err != nil && err != io.EOF {
		return nil, corrupt("open file: read footer: %v", err)
	}
	copy(tail[n:], trailer)
	return tail, nil
}

// tailReader serves reads of the file's tail from the bytes openFile has
// already read, so Arrow does not fetch them again (one range read each,
// for an object in a store).
type tailReader struct {
	ipc.ReadAtSeeker
	tail  []byte
	start int64
}

func (t *tailReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= t.start && off+int64(len(p)) <= t.start+int64(len(t.tail)) {
		return copy(p, t.tail[off-t.start:]), nil
	}
	return t.ReadAtSeeker.ReadAt(p, off)
}

// checkFooter walks a footer flatbuffer and compares its schema's shape with
// that of Schema().
func checkFooter(b []byte) error {
	shape, err := footerShape(b)
	if err != nil {
		return corrupt("footer: %v", err)
	}
	want, err := wantShape()
	if err != nil {
		return err
	}
	if shape != want {
		return corrupt("footer: schema shaped %s, want %s", shape, want)
	}
	return nil
}

// wantShape is the shape of the footer Arrow writes for Schema(), computed
// once from a file written here rather than kept by hand.
var wantShape = sync.OnceValues(func() (string, error) {
	var buf seekBuffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schemaWithIndex("{}")))
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return "", internal("write reference footer: %v", err)
	}
	data := buf.b
	n := int(binary.LittleEndian.Uint32(data[len(data)-trailerBytes:]))
	shape, err := footerShape(data[len(data)-trailerBytes-n : len(data)-trailerBytes])
	if err != nil {
		return "", internal("reference footer: %v", err)
	}
	return shape, nil
})

// footerShape returns the fields' types and nesting, the number of
// dictionaries and the number of metadata pairs, having checked every
// table, vector and string the walk meets.
func footerShape(b []byte) (string, error) {
	fb := flatbuf{b: b}
	root, err := fb.root()
	if err != nil {
		return "", err
	}
	if _, err := fb.vector(root, footerRecordBatches, blockBytes); err != nil {
		return "", fmt.Errorf("record batches: %w", err)
	}
	dicts, err := fb.vector(root, footerDictionaries, blockBytes)
	if err != nil {
		return "", fmt.Errorf("dictionaries: %w", err)
	}
	if _, err := fb.metadata(root, footerMetadata); err != nil {
		return "", err
	}
	schema, ok, err := fb.table(root, footerSchema)
	if err != nil {
		return "", fmt.Errorf("schema: %w", err)
	}
	if !ok {
		return "", errors.New("no schema")
	}
	if _, err := fb.vector(schema, schemaFeatures, 8); err != nil {
		return "", fmt.Errorf("features: %w", err)
	}
	pairs, err := fb.metadata(schema, schemaMetadata)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "dictionaries=%d metadata=%d fields=", dicts.n, pairs)
	count := 0
	if err := fb.fields(&sb, schema, schemaFields, 0, &count); err != nil {
		return "", err
	}
	return sb.String(), nil
}

// fields writes the shape of the field vector in slot of table t.
func (fb flatbuf) fields(sb *strings.Builder, t int, slot, depth int, count *int) error {
	if depth > maxFieldDepth {
		return fmt.Errorf("fields nested deeper than %d", maxFieldDepth)
	}
	v, err := fb.vector(t, slot, 4)
	if err != nil {
		return fmt.Errorf("fields: %w", err)
	}
	sb.WriteByte('(')
	for i := range v.n {
		if *count++; *count > maxFields {
			return fmt.Errorf("more than %d fields", maxFields)
		}
		f, err := fb.indirect(v.start + 4*i)
		if err != nil {
			return fmt.Errorf("field %d: %w", i, err)
		}
		if err := fb.str(f, fieldName); err != nil {
			return fmt.Errorf("field %d name: %w", i, err)
		}
		typ, err := fb.scalar(f, fieldTypeType, 1)
		if err != nil {
			return fmt.Errorf("field %d type: %w", i, err)
		}
		if _, _, err := fb.table(f, fieldType); err != nil {
			return fmt.Errorf("field %d type: %w", i, err)
		}
		_, dict, err := fb.table(f, fieldDictionary)
		if err != nil {
			return fmt.Errorf("field %d dictionary: %w", i, err)
		}
		pairs, err := fb.metadata(f, fieldMetadata)
		if err != nil {
			return err
		}
		fmt.Fprintf(sb, "%d", typ)
		if dict || pairs > 0 {
			fmt.Fprintf(sb, "[dict=%v metadata=%d]", dict, pairs)
		}
		if err := fb.fields(sb, f, fieldChildren, depth+1, count); err != nil {
			return err
		}
		sb.WriteByte(',')
	}
	sb.WriteByte(')')
	return nil
}

// flatbuf reads a flatbuffer with every position checked against its
// bytes (the flatbuffers package checks none).
type flatbuf struct{ b []byte }

type vec struct{ start, n int }

func (fb flatbuf) u32(pos int) (int, error) {
	if pos < 0 || pos > len(fb.b)-4 {
		return 0, fmt.Errorf("offset %d outside %d bytes", pos, len(fb.b))
	}
	return int(binary.LittleEndian.Uint32(fb.b[pos:])), nil
}

func (fb flatbuf) u16(pos int) (int, error) {
	if pos < 0 || pos > len(fb.b)-2 {
		return 0, fmt.Errorf("offset %d outside %d bytes", pos, len(fb.b))
	}
	return int(binary.LittleEndian.Uint16(fb.b[pos:])), nil
}

// root returns the position of the root table.
func (fb flatbuf) root() (int, error) { return fb.indirect(0) }

// indirect follows the unsigned offset stored at pos to a table, and
// checks the table's vtable.
func (fb flatbuf) indirect(pos int) (int, error) {
	off, err := fb.u32(pos)
	if err != nil {
		return 0, err
	}
	t := pos + off
	soff, err := fb.u32(t)
	if err != nil {
		return 0, err
	}
	vt := t - int(int32(uint32(soff)))
	vlen, err := fb.u16(vt)
	if err != nil {
		return 0, fmt.Errorf("vtable: %w", err)
	}
	if vlen < 4 || vlen%2 != 0 || vt+vlen > len(fb.b) {
		return 0, fmt.Errorf("vtable of %d bytes at %d", vlen, vt)
	}
	return t, nil
}

// field returns the position of slot's value in table t, 0 when absent.
func (fb flatbuf) field(t, slot int) (int, error) {
	soff, _ := fb.u32(t) // checked by indirect
	vt := t - int(int32(uint32(soff)))
	vlen, _ := fb.u16(vt)
	if 4+2*slot+2 > vlen {
		return 0, nil
	}
	off, err := fb.u16(vt + 4 + 2*slot)
	if err != nil || off == 0 {
		return 0, err
	}
	return t + off, nil
}

func (fb flatbuf) scalar(t, slot, size int) (int, error) {
	p, err := fb.field(t, slot)
	if err != nil || p == 0 {
		return 0, err
	}
	if p+size > len(fb.b) {
		return 0, fmt.Errorf("value at %d outside %d bytes", p, len(fb.b))
	}
	return int(fb.b[p]), nil // only one-byte scalars are read
}

func (fb flatbuf) table(t, slot int) (pos int, ok bool, err error) {
	p, err := fb.field(t, slot)
	if err != nil || p == 0 {
		return 0, false, err
	}
	pos, err = fb.indirect(p)
	return pos, err == nil, err
}

// vector checks the vector in slot of t, of elements of size bytes each.
func (fb flatbuf) vector(t, slot, size int) (vec, error) {
	p, err := fb.field(t, slot)
	if err != nil || p == 0 {
		return vec{}, err
	}
	off, err := fb.u32(p)
	if err != nil {
		return vec{}, err
	}
	n, err := fb.u32(p + off)
	if err != nil {
		return vec{}, err
	}
	start := p + off + 4
	if n > (len(fb.b)-start)/size {
		return vec{}, fmt.Errorf("%d elements of %d bytes at %d, past %d bytes", n, size, start, len(fb.b))
	}
	return vec{start: start, n: n}, nil
}

func (fb flatbuf) str(t, slot int) error {
	_, err := fb.vector(t, slot, 1)
	return err
}

// metadata checks the key-value vector in slot of t and returns its length.
func (fb flatbuf) metadata(t, slot int) (int, error) {
	v, err := fb.vector(t, slot, 4)
	if err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	for i := range v.n {
		kv, err := fb.indirect(v.start + 4*i)
		if err == nil {
			err = fb.str(kv, 0)
		}
		if err == nil {
			err = fb.str(kv, 1)
		}
		if err != nil {
			return 0, fmt.Errorf("metadata %d: %w", i, err)
		}
	}
	return v.n, nil
}
