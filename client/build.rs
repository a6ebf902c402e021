//! Generates the client from the committed `openapi/hyperfleet.json` with
//! `progenitor::Generator` into `$OUT_DIR/hyperfleet_client.rs`, so the CLI
//! builds on the very document the server is held to (never edited by hand).

use std::path::Path;

fn main() {
    let spec_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/hyperfleet.json");
    println!("cargo:rerun-if-changed={spec_file}");
    let text = std::fs::read_to_string(spec_file).unwrap_or_else(|e| panic!("reading {spec_file}: {e}"));
    let spec: openapiv3::OpenAPI =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{spec_file} is not an OpenAPI 3.0 document: {e}"));
    let mut generator = progenitor::Generator::new(
        progenitor::GenerationSettings::default().with_interface(progenitor::InterfaceStyle::Builder),
    );
    let tokens = generator.generate_tokens(&spec).unwrap_or_else(|e| panic!("progenitor rejected {spec_file}: {e}"));
    let ast = syn::parse2(tokens).unwrap_or_else(|e| panic!("progenitor produced unparsable code: {e}"));
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}"));
    let out = Path::new(&out_dir).join("hyperfleet_client.rs");
    std::fs::write(&out, prettyplease::unparse(&ast)).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
