// Package wray writes wray tasks and actors in Go (GOOS=wasip1, built as a
// reactor with -buildmode=c-shared). A task is an exported function:
//
//	//go:wasmexport wray:task/add
//	func add() int32 {
//		args := wray.Args()
//		a, err1 := args.Int(0)
//		b, err2 := args.Int(1)
//		if err1 != nil || err2 != nil || args.Len() != 2 {
//			return wray.Fail("add takes two integers")
//		}
//		return wray.ReturnInt(a + b)
//	}
//
// Arguments and results are wray's cross-language values (deterministic
// CBOR, docs/abi.md "Values across languages"), one per argument.
package wray

import "unsafe"

//go:wasmimport wray:host/v1 task_args
func taskArgs(buf uint32, capacity uint32, outLen uint32) int32

//go:wasmimport wray:host/v1 task_return
func taskReturn(index uint32, data uint32, length uint32, refs uint32, nrefs uint32) int32

//go:wasmimport wray:host/v1 task_fail
func taskFail(kind uint32, msg uint32, length uint32) int32

const (
	statusOK             = 0
	statusBufferTooSmall = -1
	kindApplication      = 1
)

// ptr is the guest-memory address of b's first byte (0 for an empty b).
func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}
