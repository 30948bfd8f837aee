// Embedded migrations must trigger a rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
