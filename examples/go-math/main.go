// go-math: wray tasks and an actor in Go, the c-math example's twins.
//
//	add(a: int, b: int) -> int
//	sum(xs: list of float) -> float
//	fails() -> never: an application error with a message
//	store(x: any) -> ref: puts x as an object, returns a reference to it
//	Counter(start: int), Counter.incr() -> int
//
// Built by `make guests` (Go for GOOS=wasip1, a reactor) to
// target/wasm32-wasip1/release/go_math.wasm.
package main

import "wray"

func main() {}

//go:wasmexport wray:task/add
func add() int32 {
	args := wray.Args()
	a, err1 := args.Int(0)
	b, err2 := args.Int(1)
	if args.Len() != 2 || err1 != nil || err2 != nil {
		return wray.Fail("add takes two integers")
	}
	return wray.ReturnInt(a + b)
}

//go:wasmexport wray:task/sum
func sum() int32 {
	args := wray.Args()
	r, err := args.Reader(0)
	if args.Len() != 1 || err != nil {
		return wray.Fail("sum takes a list of numbers")
	}
	n, err := r.List()
	if err != nil {
		return wray.Fail("sum takes a list of numbers")
	}
	total := 0.0
	for i := 0; i < n; i++ {
		x, err := r.Float()
		if err != nil {
			return wray.Fail("sum takes a list of numbers")
		}
		total += x
	}
	return wray.ReturnFloat(total)
}

//go:wasmexport wray:task/fails
func fails() int32 {
	return wray.Fail("fails always fails: this is its message")
}

//go:wasmexport wray:task/store
func store() int32 {
	args := wray.Args()
	x, err := args.Raw(0)
	if args.Len() != 1 || err != nil {
		return wray.Fail("store takes one value")
	}
	var w wray.Writer
	w.Encoded(x)
	o, err := wray.Put(&w)
	if err != nil {
		return wray.Fail("store: " + err.Error())
	}
	defer wray.Release(o)
	return wray.ReturnRef(o)
}

// count is Counter's state: each actor has an instance of its own.
var count int64

//go:wasmexport wray:actor/Counter/new
func counterNew() int32 {
	args := wray.Args()
	start, err := args.Int(0)
	if args.Len() != 1 || err != nil {
		return wray.Fail("Counter takes a start value, an integer")
	}
	count = start
	return wray.ReturnNull()
}

//go:wasmexport wray:actor/Counter/incr
func counterIncr() int32 {
	count++
	return wray.ReturnInt(count)
}
