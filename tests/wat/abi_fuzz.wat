;; A fuzzer over the host ABI: its task `fuzz` reads its one argument as raw
;; bytes and turns each 24-byte record into a host call: byte 0 picks the
;; function, the next five little-endian i32s are its parameters (timeouts
;; are always 0, so nothing blocks). The test feeds it random bytes and
;; checks the host survives whatever it does. Its second argument is large
;; (it imports `task_arg_map`, so that argument is left out of the buffer):
;; the mapping calls map it, map objects, and unmap wild addresses and the
;; last one mapped.
(module
  (import "wray:host/v1" "object_put" (func $object_put (param i32 i32 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "object_put_begin" (func $put_begin (param i32) (result i32)))
  (import "wray:host/v1" "object_put_write" (func $put_write (param i32 i32) (result i32)))
  (import "wray:host/v1" "object_put_end" (func $put_end (param i32 i32 i32) (result i32)))
  (import "wray:host/v1" "object_get" (func $object_get (param i32 i64 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "object_wait" (func $object_wait (param i32 i32 i32 i64 i32) (result i32)))
  (import "wray:host/v1" "object_retain" (func $object_retain (param i32) (result i32)))
  (import "wray:host/v1" "object_release" (func $object_release (param i32) (result i32)))
  (import "wray:host/v1" "task_submit" (func $task_submit (param i32 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "task_args" (func $task_args (param i32 i32 i32) (result i32)))
  (import "wray:host/v1" "task_return" (func $task_return (param i32 i32 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "task_fail" (func $task_fail (param i32 i32 i32) (result i32)))
  (import "wray:host/v1" "task_cancel" (func $task_cancel (param i32 i32) (result i32)))
  (import "wray:host/v1" "actor_create" (func $actor_create (param i32 i32 i32) (result i32)))
  (import "wray:host/v1" "actor_lookup" (func $actor_lookup (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "actor_kill" (func $actor_kill (param i32 i32) (result i32)))
  (import "wray:host/v1" "actor_self" (func $actor_self (param i32) (result i32)))
  (import "wray:host/v1" "last_error" (func $last_error (param i32 i32 i32) (result i32)))
  (import "wray:host/v1" "object_map" (func $object_map (param i32 i64 i32 i32 i32 i32) (result i32)))
  (import "wray:host/v1" "object_unmap" (func $object_unmap (param i32) (result i32)))
  (import "wray:host/v1" "task_arg_map" (func $task_arg_map (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)

  (func (export "wray:task/fuzz") (result i32)
    (local $at i32) (local $end i32) (local $op i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32) (local $e i32)
    (local $mapped i32) (local $maps i32)
    ;; The argument buffer goes to 0; its one slot's (offset, length) is at 4.
    (if (i32.ne (call $task_args (i32.const 0) (i32.const 65536) (i32.const 65532)) (i32.const 0))
      (then (return (i32.const 0))))
    (local.set $at (i32.load (i32.const 4)))
    (local.set $end (i32.add (local.get $at) (i32.load (i32.const 8))))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (i32.add (local.get $at) (i32.const 24)) (local.get $end)))
        (local.set $op (i32.rem_u (i32.load8_u (local.get $at)) (i32.const 21)))
        (local.set $a (i32.load (i32.add (local.get $at) (i32.const 4))))
        (local.set $b (i32.load (i32.add (local.get $at) (i32.const 8))))
        (local.set $c (i32.load (i32.add (local.get $at) (i32.const 12))))
        (local.set $d (i32.load (i32.add (local.get $at) (i32.const 16))))
        (local.set $e (i32.load (i32.add (local.get $at) (i32.const 20))))
        (block $call
          (if (i32.eq (local.get $op) (i32.const 0)) (then (drop (call $object_put (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 1)) (then (drop (call $object_get (local.get $a) (i64.const 0) (local.get $c) (local.get $d) (local.get $e))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 2)) (then (drop (call $object_wait (local.get $a) (local.get $b) (local.get $c) (i64.const 0) (local.get $e))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 3)) (then (drop (call $object_retain (local.get $a))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 4)) (then (drop (call $object_release (local.get $a))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 5)) (then (drop (call $task_submit (local.get $a) (local.get $b) (local.get $c) (local.get $d))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 6)) (then (drop (call $task_args (local.get $a) (local.get $b) (local.get $c))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 7)) (then (drop (call $task_return (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 8)) (then (drop (call $task_fail (local.get $a) (local.get $b) (local.get $c))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 9)) (then (drop (call $task_cancel (local.get $a) (local.get $b))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 10)) (then (drop (call $actor_create (local.get $a) (local.get $b) (local.get $c))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 11)) (then (drop (call $actor_lookup (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e) (local.get $a))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 12)) (then (drop (call $actor_kill (local.get $a) (local.get $b))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 13)) (then (drop (call $actor_self (local.get $a))) (br $call)))
          ;; Streamed puts of at most 64 KiB, so none waits for room, in pieces
          ;; and with references few enough that plausible records stay in
          ;; bounds (wild pointers still go out).
          (if (i32.eq (local.get $op) (i32.const 14)) (then (drop (call $put_begin (i32.and (local.get $a) (i32.const 0xffff)))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 15)) (then (drop (call $put_write (local.get $a) (i32.and (local.get $b) (i32.const 0x3ff)))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 16)) (then (drop (call $put_end (local.get $a) (i32.and (local.get $b) (i32.const 3)) (local.get $c))) (br $call)))
          (if (i32.eq (local.get $op) (i32.const 18)) (then (drop (call $object_map (local.get $a) (i64.const 0) (local.get $c) (local.get $d) (local.get $e) (local.get $b))) (br $call)))
          ;; Maps argument 0..3 (1 is the large one); notes where it went.
          (if (i32.eq (local.get $op) (i32.const 19))
            (then
              (if (i32.eqz (call $task_arg_map (i32.and (local.get $a) (i32.const 3)) (local.get $b) (local.get $c)))
                (then
                  (local.set $mapped (i32.load (local.get $b)))
                  (local.set $maps (i32.add (local.get $maps) (i32.const 1)))))
              (br $call)))
          ;; Unmaps the last region mapped, or any address.
          (if (i32.eq (local.get $op) (i32.const 20))
            (then
              (drop (call $object_unmap (select (local.get $mapped) (local.get $a) (i32.and (local.get $e) (i32.const 1)))))
              (br $call)))
          (drop (call $last_error (local.get $a) (local.get $b) (local.get $c))))
        (local.set $at (i32.add (local.get $at) (i32.const 24)))
        (br $next)))
    ;; The result, unless a record set one: how many mappings succeeded.
    (i32.store (i32.const 65520) (local.get $maps))
    (drop (call $task_return (i32.const 0) (i32.const 65520) (i32.const 4) (i32.const 0) (i32.const 0)))
    (i32.const 0))
)
