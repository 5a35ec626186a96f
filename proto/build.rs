//! Compiles every `.proto` file of the platform with a vendored `protoc`, so a fresh machine
//! needs nothing installed, and writes one file descriptor set per package for reflection.

use std::path::PathBuf;

const PROTO_FILES: [&str; 3] = [
    "mosip/pms/partner/v1/partner_registry.proto",
    "mosip/pms/certstore/v1/certificate_store.proto",
    "mosip/pms/ftm/v1/ftm_management.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known_includes = protoc_bin_vendored::include_path()?;

    for file in PROTO_FILES {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(file).display()
        );
    }
    println!("cargo:rerun-if-changed=build.rs");

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    config.file_descriptor_set_path(out_dir.join("pmp_descriptor.bin"));
    config.protoc_arg("--experimental_allow_proto3_optional");

    let includes = [manifest_dir.clone(), well_known_includes];
    let protos: Vec<PathBuf> = PROTO_FILES.iter().map(|f| manifest_dir.join(f)).collect();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &protos, &includes)?;
    Ok(())
}
