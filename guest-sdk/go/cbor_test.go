package wray

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

var errTooBig = errors.New("an integer past int64")

// copyValue reads one value and writes it again.
func copyValue(r *Reader, w *Writer, depth int) error {
	if depth > 128 {
		return ErrKind
	}
	switch r.Kind() {
	case Null:
		w.Null()
		return r.Null()
	case Bool:
		v, err := r.Bool()
		w.Bool(v)
		return err
	case Int:
		v, err := r.Int()
		if err != nil {
			return errTooBig
		}
		w.Int(v)
		return nil
	case Float:
		v, err := r.Float()
		w.Float(v)
		return err
	case Str:
		v, err := r.String()
		w.String(v)
		return err
	case Bytes:
		v, err := r.ByteString()
		w.ByteString(v)
		return err
	case Ref:
		v, err := r.Ref()
		w.Ref(v)
		return err
	case List, Map:
		isMap := r.Kind() == Map
		var n int
		var err error
		if isMap {
			n, err = r.Map()
			w.Map(n)
			n *= 2
		} else {
			n, err = r.List()
			w.List(n)
		}
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := copyValue(r, w, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return ErrKind
}

// TestVectors checks the codec against tests/cbor-vectors.txt: every value
// read and written again comes out as the same bytes.
func TestVectors(t *testing.T) {
	f, err := os.Open("../../tests/cbor-vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checked, skipped := 0, 0
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		want, err := hex.DecodeString(strings.SplitN(line, "\t", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		var w Writer
		r := NewReader(want)
		switch err := copyValue(r, &w, 0); {
		case errors.Is(err, errTooBig):
			skipped++
		case err != nil || !r.Done() || !bytes.Equal(w.Bytes(), want):
			t.Errorf("%s: wrote %x (%v)", line, w.Bytes(), err)
		default:
			checked++
		}
	}
	if checked < 38 {
		t.Errorf("%d vectors checked, %d left out", checked, skipped)
	}
}
