//! Generates the tonic/prost code from `proto/*.proto` with a vendored protoc, so a
//! fresh machine needs nothing but cargo.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };
    tonic_prost_build::configure().compile_protos(&["proto/accelbench.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
