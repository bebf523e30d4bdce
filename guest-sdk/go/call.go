//go:build wasip1

package wray

import (
	"errors"
	"unsafe"
)

// Arguments are the current call's arguments: fetch them with Args at the
// start of each call (an actor's instance serves many).
type Arguments struct {
	buf []byte
	n   int
}

// ErrNoArgument is returned for an argument index the call does not have.
var ErrNoArgument = errors.New("wray: no such argument")

// Args fetches the current call's arguments.
func Args() Arguments {
	var n uint32
	taskArgs(0, 0, uint32(uintptr(unsafe.Pointer(&n))))
	// Payloads are 16-aligned from the buffer's start: over-allocate and
	// slice at a 16-byte boundary.
	raw := make([]byte, int(n)+16)
	off := (16 - int(uintptr(unsafe.Pointer(&raw[0])))%16) % 16
	buf := raw[off : off+int(n)]
	if n < 4 || taskArgs(ptr(buf), n, uint32(uintptr(unsafe.Pointer(&n)))) != statusOK {
		return Arguments{}
	}
	return Arguments{buf: buf, n: int(le32(buf))}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// Len is the number of arguments.
func (a Arguments) Len() int { return a.n }

// Reader reads argument i.
func (a Arguments) Reader(i int) (*Reader, error) {
	if i < 0 || i >= a.n || 4+8*(i+1) > len(a.buf) {
		return nil, ErrNoArgument
	}
	at, n := int(le32(a.buf[4+8*i:])), int(le32(a.buf[8+8*i:]))
	if at > len(a.buf) || n > len(a.buf)-at {
		return nil, ErrNoArgument
	}
	return &Reader{b: a.buf[at : at+n]}, nil
}

// Raw is argument i as it was encoded: one whole value.
func (a Arguments) Raw(i int) ([]byte, error) {
	r, err := a.Reader(i)
	if err != nil {
		return nil, err
	}
	return r.b, nil
}

// Int is argument i, an integer that fits int64.
func (a Arguments) Int(i int) (int64, error) { return one(a, i, (*Reader).Int) }

// Float is argument i, a float or an integer.
func (a Arguments) Float(i int) (float64, error) { return one(a, i, (*Reader).Float) }

// one reads argument i as a single value with read.
func one[T any](a Arguments, i int, read func(*Reader) (T, error)) (T, error) {
	var zero T
	r, err := a.Reader(i)
	if err != nil {
		return zero, err
	}
	v, err := read(r)
	if err == nil && !r.Done() {
		return zero, ErrKind
	}
	return v, err
}

// Return sets the call's result to the value in w; returns what the
// export returns (0, or 1 if it could not be set).
func Return(w *Writer) int32 {
	if taskReturn(0, ptr(w.b), uint32(len(w.b)), 0, 0) != statusOK {
		return Fail("the result could not be set (too large)")
	}
	return 0
}

// Object is an object's 32-byte id, held by this instance until Release.
type Object [32]byte

// ErrRefused is returned when the host refuses a value.
var ErrRefused = errors.New("wray: the host refused the value")

// Put stores the value written to w as an object: the same value put from
// any language is the same object. Values holding object references
// cannot be put from Go yet.
func Put(w *Writer) (Object, error) {
	var id Object
	if putValue(w.b, &id) != statusOK {
		return id, ErrRefused
	}
	return id, nil
}

func putValue(b []byte, id *Object) int32 {
	return objectPutValue(ptr(b), uint32(len(b)), 0, 0, uint32(uintptr(unsafe.Pointer(&id[0]))))
}

// Release drops this instance's hold on o.
func Release(o Object) { objectRelease(uint32(uintptr(unsafe.Pointer(&o[0])))) }

// ReturnRef returns a reference to o.
func ReturnRef(o Object) int32 {
	var w Writer
	w.Ref(o)
	if taskReturn(0, ptr(w.b), uint32(len(w.b)), uint32(uintptr(unsafe.Pointer(&o[0]))), 1) != statusOK {
		return Fail("the result could not be set")
	}
	return 0
}

// ReturnInt returns an integer.
func ReturnInt(i int64) int32 {
	var w Writer
	w.Int(i)
	return Return(&w)
}

// ReturnFloat returns a float.
func ReturnFloat(x float64) int32 {
	var w Writer
	w.Float(x)
	return Return(&w)
}

// ReturnNull returns null.
func ReturnNull() int32 {
	var w Writer
	w.Null()
	return Return(&w)
}

// Fail fails the call with message (an application error); returns 1,
// what the export returns.
func Fail(message string) int32 {
	b := []byte(message)
	taskFail(kindApplication, ptr(b), uint32(len(b)))
	return 1
}
