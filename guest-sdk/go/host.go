//go:build wasip1

package wray

import "unsafe"

//go:wasmimport wray:host/v1 task_args
func taskArgs(buf uint32, capacity uint32, outLen uint32) int32

//go:wasmimport wray:host/v1 task_return
func taskReturn(index uint32, data uint32, length uint32, refs uint32, nrefs uint32) int32

//go:wasmimport wray:host/v1 task_fail
func taskFail(kind uint32, msg uint32, length uint32) int32

//go:wasmimport wray:host/v1 object_put_value
func objectPutValue(data uint32, length uint32, refs uint32, nrefs uint32, outID uint32) int32

//go:wasmimport wray:host/v1 object_release
func objectRelease(id uint32) int32

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
