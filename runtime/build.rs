//! Generates the cluster's gRPC code from `proto/wray.proto` when the
//! node is built (feature `node`; it needs `protoc`, which `make setup`
//! installs).

fn main() {
    println!("cargo::rerun-if-changed=proto/wray.proto");
    #[cfg(feature = "node")]
    tonic_prost_build::configure()
        // Byte fields as `bytes::Bytes`: chunks of an object slice its
        // buffer instead of copying it.
        .bytes(".")
        .compile_protos(&["proto/wray.proto"], &["proto"])
        .expect("protoc compiles proto/wray.proto (install protobuf-compiler: `make setup`)");
}
