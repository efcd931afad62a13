use std::env::consts::{ARCH, OS};

fn main() {
    println!("Hello from {OS}/{ARCH}!");
}
