//! Generates the client from openapi/hyperfleet.json with `progenitor::Generator`
//! into `$OUT_DIR/hyperfleet_client.rs` (never edited by hand).

use std::path::Path;

/// The committed spec; `HYPERFLEET_SPEC` (an absolute path) overrides it.
const DEFAULT_SPEC: &str = "../../openapi/hyperfleet.json";

fn main() {
    println!("cargo:rerun-if-env-changed=HYPERFLEET_SPEC");
    let spec_path = std::env::var("HYPERFLEET_SPEC").unwrap_or_else(|_| DEFAULT_SPEC.to_owned());
    let spec_file = spec_path.as_str();
    println!("cargo:rerun-if-changed={spec_file}");
    let text = std::fs::read_to_string(spec_file).unwrap_or_else(|e| panic!("reading {spec_file}: {e}"));
    let spec: openapiv3::OpenAPI =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{spec_file} is not an OpenAPI 3.0 document: {e}"));
    let mut generator = progenitor::Generator::new(
        progenitor::GenerationSettings::default().with_interface(progenitor::InterfaceStyle::Positional),
    );
    let tokens = generator
        .generate_tokens(&spec)
        .unwrap_or_else(|e| panic!("progenitor rejected {spec_file}: {e}"));
    let ast = syn::parse2(tokens).unwrap_or_else(|e| panic!("progenitor produced unparsable code: {e}"));
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("hyperfleet_client.rs");
    std::fs::write(&out, prettyplease::unparse(&ast)).unwrap();
}
