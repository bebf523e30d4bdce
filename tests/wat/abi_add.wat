;; A wray guest written without the SDK, from docs/abi.md alone.
;;
;; `wray:task/add` reads two i32 arguments (each the 4-byte little-endian
;; value rkyv encodes an i32 as) and returns their sum. `Acc` is an actor: its
;; constructor takes a start value, its method `add` adds to it and returns
;; the total. `wray:main` submits add(2, 40) with a task spec laid out by
;; hand, gets the result and checks it is 42; creates an `Acc` from 10, calls
;; `add(5)` and checks it gets 15; and prints "42 15\n" through WASI.
(module
  (import "wray:host/v1" "task_args" (func $task_args (param i32 i32 i32) (result i32)))
  (import "wray:host/v1" "task_return" (func $task_return (param i32 i32 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "task_submit" (func $task_submit (param i32 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "object_get" (func $object_get (param i32 i64 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "actor_create" (func $actor_create (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; The task spec of add(2, 40): version 1, kind 0 (task), reserved,
  ;; name "add", one return, no options, two inline values without refs.
  (data (i32.const 256)
    "\01\00\00\00" "\03\00\00\00" "add" "\01\00\00\00" "\00\00\00\00" "\02\00\00\00"
    "\00" "\04\00\00\00" "\02\00\00\00" "\00\00\00\00"
    "\00" "\04\00\00\00" "\28\00\00\00" "\00\00\00\00")
  (data (i32.const 3100) "42 15\n")

  ;; The spec of a new Acc(10): version 1, kind 1 (actor create), name
  ;; "Acc", one return, no options, one inline i32.
  (data (i32.const 4096)
    "\01\01\00\00" "\03\00\00\00" "Acc" "\01\00\00\00" "\00\00\00\00" "\01\00\00\00"
    "\00" "\04\00\00\00" "\0a\00\00\00" "\00\00\00\00")
  ;; The spec of add(5) on an actor: kind 2 (method), name "add", then the
  ;; 16-byte actor id (filled in at offset 4096+256+11 once the actor
  ;; exists), one return, no options, one inline i32.
  (data (i32.const 4352)
    "\01\02\00\00" "\03\00\00\00" "add"
    "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00"
    "\01\00\00\00" "\00\00\00\00" "\01\00\00\00"
    "\00" "\04\00\00\00" "\05\00\00\00" "\00\00\00\00")

  ;; Acc's state: the running total.
  (global $total (mut i32) (i32.const 0))

  ;; Acc.new(start: i32)
  (func (export "wray:actor/Acc/new") (result i32)
    (if (i32.ne (call $task_args (i32.const 0) (i32.const 256) (i32.const 512)) (i32.const 0))
      (then (return (i32.const 1))))
    (global.set $total (i32.load (i32.load (i32.const 4))))
    (i32.const 0))

  ;; Acc.add(x: i32) -> i32
  (func (export "wray:actor/Acc/add") (result i32)
    (if (i32.ne (call $task_args (i32.const 0) (i32.const 256) (i32.const 512)) (i32.const 0))
      (then (return (i32.const 1))))
    (global.set $total (i32.add (global.get $total) (i32.load (i32.load (i32.const 4)))))
    (i32.store (i32.const 528) (global.get $total))
    (drop (call $task_return (i32.const 0) (i32.const 528) (i32.const 4) (i32.const 0) (i32.const 0)))
    (i32.const 0))

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
    ;; Create Acc(10); its 16-byte id goes straight into the method spec.
    (if (i32.ne (call $actor_create (i32.const 4096) (i32.const 36) (i32.const 4363)) (i32.const 0))
      (then (return (i32.const 5))))
    ;; Call add(5) on it and get the result.
    (if (i32.ne (call $task_submit (i32.const 4352) (i32.const 52) (i32.const 1024) (i32.const 32)) (i32.const 1))
      (then (return (i32.const 6))))
    (if (i32.ne (call $object_get (i32.const 1024) (i64.const -1) (i32.const 2048) (i32.const 64) (i32.const 2112)) (i32.const 0))
      (then (return (i32.const 7))))
    (if (i32.ne (i32.load (i32.const 2048)) (i32.const 15))
      (then (return (i32.const 8))))
    ;; Print "42 15\n": one iovec at 3000 -> (3100, 6).
    (i32.store (i32.const 3000) (i32.const 3100))
    (i32.store (i32.const 3004) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 1) (i32.const 3008)))
    (i32.const 0))
)
