;; A wray guest written without the SDK, from docs/abi.md alone.
;;
;; `wray:task/add` reads two i32 arguments (each the 4-byte little-endian
;; value rkyv encodes an i32 as) and returns their sum. `wray:main` submits
;; add(2, 40) with a task spec laid out by hand, gets the result, checks it
;; is 42 and prints "42\n" through WASI.
(module
  (import "wray:host/v1" "task_args" (func $task_args (param i32 i32 i32) (result i32)))
  (import "wray:host/v1" "task_return" (func $task_return (param i32 i32 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "task_submit" (func $task_submit (param i32 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "object_get" (func $object_get (param i32 i64 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; The task spec of add(2, 40): version 1, kind 0 (task), reserved,
  ;; name "add", one return, no options, two inline values without refs.
  (data (i32.const 256)
    "\01\00\00\00" "\03\00\00\00" "add" "\01\00\00\00" "\00\00\00\00" "\02\00\00\00"
    "\00" "\04\00\00\00" "\02\00\00\00" "\00\00\00\00"
    "\00" "\04\00\00\00" "\28\00\00\00" "\00\00\00\00")
  (data (i32.const 3100) "42\n")

  ;; add(a: i32, b: i32) -> i32
  (func (export "wray:task/add") (result i32)
    ;; The argument buffer goes to offset 0 (aligned), its length to 512.
    (if (i32.ne (call $task_args (i32.const 0) (i32.const 256) (i32.const 512)) (i32.const 0))
      (then (return (i32.const 1))))
    ;; Slot i's (offset, length) pair is at 4 + 8i.
    (i32.store (i32.const 528)
      (i32.add
        (i32.load (i32.load (i32.const 4)))
        (i32.load (i32.load (i32.const 12)))))
    (drop (call $task_return (i32.const 0) (i32.const 528) (i32.const 4) (i32.const 0) (i32.const 0)))
    (i32.const 0))

  (func (export "wray:main") (result i32)
    ;; Submit: the return id (32 bytes) goes to 1024; one id comes back.
    (if (i32.ne (call $task_submit (i32.const 256) (i32.const 49) (i32.const 1024) (i32.const 32)) (i32.const 1))
      (then (return (i32.const 2))))
    ;; Get, waiting without limit, into 2048 (64 bytes), length to 2112.
    (if (i32.ne (call $object_get (i32.const 1024) (i64.const -1) (i32.const 2048) (i32.const 64) (i32.const 2112)) (i32.const 0))
      (then (return (i32.const 3))))
    (if (i32.ne (i32.load (i32.const 2048)) (i32.const 42))
      (then (return (i32.const 4))))
    ;; Print "42\n": one iovec at 3000 -> (3100, 3).
    (i32.store (i32.const 3000) (i32.const 3100))
    (i32.store (i32.const 3004) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 1) (i32.const 3008)))
    (i32.const 0))
)
