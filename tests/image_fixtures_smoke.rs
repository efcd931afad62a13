//! The image fixtures are what they claim, as independent readers (skopeo, umoci) see them.

mod support;

use support::images::images;

#[test]
fn builds() {
    let im = images();
    eprintln!("{im:#?}");
}
