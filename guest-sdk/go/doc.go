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
