package wray

import (
	"encoding/binary"
	"errors"
	"math"
)

// RefTag is the CBOR tag of an object reference ("wray" in ASCII).
const RefTag = 0x77726179

// Writer writes values in deterministic CBOR.
type Writer struct{ b []byte }

// Bytes is what was written.
func (w *Writer) Bytes() []byte { return w.b }

func (w *Writer) head(major byte, n uint64) {
	m := major << 5
	switch {
	case n < 24:
		w.b = append(w.b, m|byte(n))
	case n <= 0xff:
		w.b = append(w.b, m|24, byte(n))
	case n <= 0xffff:
		w.b = append(w.b, m|25)
		w.b = binary.BigEndian.AppendUint16(w.b, uint16(n))
	case n <= 0xffffffff:
		w.b = append(w.b, m|26)
		w.b = binary.BigEndian.AppendUint32(w.b, uint32(n))
	default:
		w.b = append(w.b, m|27)
		w.b = binary.BigEndian.AppendUint64(w.b, n)
	}
}

// Null writes null.
func (w *Writer) Null() { w.b = append(w.b, 0xf6) }

// Bool writes a boolean.
func (w *Writer) Bool(v bool) {
	if v {
		w.b = append(w.b, 0xf5)
	} else {
		w.b = append(w.b, 0xf4)
	}
}

// Int writes an integer.
func (w *Writer) Int(i int64) {
	if i >= 0 {
		w.head(0, uint64(i))
	} else {
		w.head(1, uint64(-1-i))
	}
}

// halfExact is the half-precision bits of x (not a NaN) if a half holds
// it exactly.
func halfExact(x float32) (uint16, bool) {
	bits := math.Float32bits(x)
	sign := uint16(bits>>16) & 0x8000
	exp := int((bits >> 23) & 0xff)
	mant := bits & 0x7fffff
	switch {
	case exp == 0xff:
		return sign | 0x7c00, true
	case exp == 0 && mant == 0:
		return sign, true
	case exp == 0:
		return 0, false
	}
	e := exp - 127
	sig := (uint32(1) << 23) | mant
	if e >= -14 && e <= 15 {
		if mant&0x1fff != 0 {
			return 0, false
		}
		return sign | uint16(e+15)<<10 | uint16(mant>>13), true
	}
	if e >= -24 && e < -14 {
		shift := uint(-(e + 1))
		if sig&((1<<shift)-1) != 0 {
			return 0, false
		}
		return sign | uint16(sig>>shift), true
	}
	return 0, false
}

// Float writes x in the narrowest float that holds it exactly.
func (w *Writer) Float(x float64) {
	if math.IsNaN(x) {
		w.b = append(w.b, 0xf9, 0x7e, 0x00)
		return
	}
	single := float32(x)
	if float64(single) != x {
		w.b = append(w.b, 0xfb)
		w.b = binary.BigEndian.AppendUint64(w.b, math.Float64bits(x))
	} else if h, ok := halfExact(single); ok {
		w.b = append(w.b, 0xf9)
		w.b = binary.BigEndian.AppendUint16(w.b, h)
	} else {
		w.b = append(w.b, 0xfa)
		w.b = binary.BigEndian.AppendUint32(w.b, math.Float32bits(single))
	}
}

// String writes a text string.
func (w *Writer) String(s string) { w.head(3, uint64(len(s))); w.b = append(w.b, s...) }

// ByteString writes a byte string.
func (w *Writer) ByteString(b []byte) { w.head(2, uint64(len(b))); w.b = append(w.b, b...) }

// List starts a list of n items.
func (w *Writer) List(n int) { w.head(4, uint64(n)) }

// Map starts a map of n entries: keys in the bytewise order of their
// encodings.
func (w *Writer) Map(n int) { w.head(5, uint64(n)) }

// Encoded writes bytes that are already encoded values.
func (w *Writer) Encoded(b []byte) { w.b = append(w.b, b...) }

// Ref writes a reference to the object with this id.
func (w *Writer) Ref(id [32]byte) { w.head(6, RefTag); w.head(2, 32); w.b = append(w.b, id[:]...) }

// Reader reads values; a failed read consumes nothing.
type Reader struct {
	b  []byte
	at int
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// ErrKind is returned when the next item is not of the asked kind, or the
// input is malformed.
var ErrKind = errors.New("wray: not a value of that kind")

// Done is whether everything was read.
func (r *Reader) Done() bool { return r.at == len(r.b) }

func (r *Reader) peek() (major, info byte, n uint64, next int, ok bool) {
	at := r.at
	if at >= len(r.b) {
		return
	}
	first := r.b[at]
	at++
	major, info = first>>5, first&0x1f
	size := 0
	switch {
	case info < 24:
		return major, info, uint64(info), at, true
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default:
		return
	}
	if len(r.b)-at < size {
		return
	}
	for i := 0; i < size; i++ {
		n = n<<8 | uint64(r.b[at+i])
	}
	return major, info, n, at + size, true
}

// Int reads an integer that fits int64.
func (r *Reader) Int() (int64, error) {
	major, _, n, next, ok := r.peek()
	if !ok || major > 1 || n > math.MaxInt64 {
		return 0, ErrKind
	}
	r.at = next
	if major == 0 {
		return int64(n), nil
	}
	return -1 - int64(n), nil
}

func fromHalf(bits uint16) float64 {
	sign := 1.0
	if bits&0x8000 != 0 {
		sign = -1
	}
	exp := int(bits>>10) & 0x1f
	mant := float64(bits & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 0x1f:
		if mant == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

// Float reads a float, or an integer (converted).
func (r *Reader) Float() (float64, error) {
	if i, err := r.Int(); err == nil {
		return float64(i), nil
	}
	major, info, n, next, ok := r.peek()
	if !ok || major != 7 || info < 25 || info > 27 {
		return 0, ErrKind
	}
	r.at = next
	switch info {
	case 25:
		return fromHalf(uint16(n)), nil
	case 26:
		return float64(math.Float32frombits(uint32(n))), nil
	}
	return math.Float64frombits(n), nil
}

// String reads a text string.
func (r *Reader) String() (string, error) {
	major, _, n, next, ok := r.peek()
	if !ok || major != 3 || n > uint64(len(r.b)-next) {
		return "", ErrKind
	}
	r.at = next + int(n)
	return string(r.b[next:r.at]), nil
}

// List reads a list's item count: read the items next.
func (r *Reader) List() (int, error) {
	major, _, n, next, ok := r.peek()
	if !ok || major != 4 || n > uint64(len(r.b)-next) {
		return 0, ErrKind
	}
	r.at = next
	return int(n), nil
}

// Kind is what the next item is.
type Kind int

// The kinds of values.
const (
	Invalid Kind = iota
	Null
	Bool
	Int
	Float
	Str
	Bytes
	List
	Map
	Ref
)

// Kind is the kind of the next item.
func (r *Reader) Kind() Kind {
	major, info, n, _, ok := r.peek()
	if !ok {
		return Invalid
	}
	switch major {
	case 0, 1:
		return Int
	case 2:
		return Bytes
	case 3:
		return Str
	case 4:
		return List
	case 5:
		return Map
	case 6:
		if n == RefTag {
			return Ref
		}
		return Invalid
	}
	switch {
	case info == 20 || info == 21:
		return Bool
	case info == 22:
		return Null
	case info >= 25 && info <= 27:
		return Float
	}
	return Invalid
}

// Null reads null.
func (r *Reader) Null() error {
	if r.Kind() != Null {
		return ErrKind
	}
	r.at++
	return nil
}

// Bool reads a boolean.
func (r *Reader) Bool() (bool, error) {
	if r.Kind() != Bool {
		return false, ErrKind
	}
	v := r.b[r.at] == 0xf5
	r.at++
	return v, nil
}

// ByteString reads a byte string (a slice of the input).
func (r *Reader) ByteString() ([]byte, error) {
	major, _, n, next, ok := r.peek()
	if !ok || major != 2 || n > uint64(len(r.b)-next) {
		return nil, ErrKind
	}
	r.at = next + int(n)
	return r.b[next:r.at], nil
}

// Map reads a map's entry count: read key, value... next.
func (r *Reader) Map() (int, error) {
	major, _, n, next, ok := r.peek()
	if !ok || major != 5 || n > uint64(len(r.b)-next) {
		return 0, ErrKind
	}
	r.at = next
	return int(n), nil
}

// Ref reads an object reference: the object's id.
func (r *Reader) Ref() ([32]byte, error) {
	var id [32]byte
	major, _, n, next, ok := r.peek()
	if !ok || major != 6 || n != RefTag || len(r.b)-next < 34 || r.b[next] != 0x58 || r.b[next+1] != 32 {
		return id, ErrKind
	}
	copy(id[:], r.b[next+2:next+34])
	r.at = next + 34
	return id, nil
}
