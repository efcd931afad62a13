//! Builds the fixtures once per target dir (file lock + completion stamp) and finds them again.

use super::{
    Broken, FIXTURES_VERSION, Fixtures, Misbehaving, NixClosure, Sysroot, fixtures_base, host_row,
    row, store_hash, toolchain_rows,
};
use mab_verify::demo::{self, Behaviour, DEMO_NAME};
use mab_verify::inspect::inspect_bytes;
use mab_verify::platform::{ARCHES, Arch};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Written last; holds the fingerprint of everything the fixtures were built from.
const STAMP: &str = ".complete";

/// Libraries every closure gets when the sysroot has them, besides what DT_NEEDED lists.
const BASE_LIBRARIES: &[&str] = &["libc.so.6", "libgcc_s.so.1", "libm.so.6"];

/// Rows whose Debian sysroot is also laid out multiarch-style with an absolute loader link.
const SYSROOT_ROWS: &[&str] = &["aarch64-linux", "powerpc64le-linux"];

/// Where each fixture lives below `<target>/mab-fixtures/v1`.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn hello(&self, arch: &Arch) -> PathBuf {
        self.dir.join("hello").join(arch.key()).join(DEMO_NAME)
    }
    fn musl(&self, kind: &str) -> PathBuf {
        self.dir.join("musl").join(kind).join(DEMO_NAME)
    }
    fn nix_root(&self, arch: &Arch) -> PathBuf {
        self.dir.join("nix").join(arch.key())
    }
    fn broken(&self, name: &str) -> PathBuf {
        self.dir.join("broken").join(name)
    }
    fn broken_bin(&self, name: &str) -> PathBuf {
        self.broken(name).join(DEMO_NAME)
    }
    fn misbehaving(&self, arch: &Arch, name: &str) -> PathBuf {
        self.dir.join("misbehaving").join(arch.key()).join(name)
    }
    fn sysroot(&self, arch: &Arch) -> PathBuf {
        self.dir.join("sysroots").join(arch.key())
    }
}

/// Build (if the stamp is missing or stale) under the lock, then report what exists.
pub(super) fn prepare() -> Result<Fixtures, String> {
    let base = fixtures_base();
    fs::create_dir_all(&base).map_err(io_err("create", &base))?;
    let layout = Layout {
        dir: base.join(FIXTURES_VERSION),
    };
    let lock_path = base.join(format!("{FIXTURES_VERSION}.lock"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err("open", &lock_path))?;
    lock.lock().map_err(io_err("lock", &lock_path))?;

    let fingerprint = fingerprint();
    let stamp = layout.dir.join(STAMP);
    if fs::read_to_string(&stamp).ok().as_deref() != Some(fingerprint.as_str()) {
        if layout.dir.exists() {
            fs::remove_dir_all(&layout.dir).map_err(io_err("remove stale", &layout.dir))?;
        }
        fs::create_dir_all(&layout.dir).map_err(io_err("create", &layout.dir))?;
        let started = Instant::now();
        build_all(&layout)?;
        fs::write(&stamp, &fingerprint).map_err(io_err("write", &stamp))?;
        eprintln!(
            "mab-verify fixtures: built {} in {:.1?}",
            layout.dir.display(),
            started.elapsed()
        );
    }
    lock.unlock().map_err(io_err("unlock", &lock_path))?;

    let fixtures = scan(&layout);
    for (arch, reason) in &fixtures.missing {
        eprintln!("note: no {} fixtures: {reason}", arch.nix_system());
    }
    if fixtures.musl_dynamic.is_none() {
        let reason = demo::missing_musl_toolchain(host_row()).unwrap_or_default();
        eprintln!("note: no musl fixtures: {reason}");
    }
    Ok(fixtures)
}

/// Everything the fixtures depend on: builder sources, demo sources, the table, the toolchains.
fn fingerprint() -> String {
    let mut h = Sha256::new();
    let sources = [
        include_str!("mod.rs"),
        include_str!("build.rs"),
        include_str!("../../../src/demo.rs"),
        include_str!("../../../demo/hello.c"),
        include_str!("../../../demo/hello.rs"),
    ];
    for text in sources {
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    for arch in ARCHES {
        h.update(format!(
            "{arch:?} {:?} {:?} {:?} {}",
            demo::missing_toolchain(arch),
            demo::missing_musl_toolchain(arch),
            demo::sysroot_loader(arch),
            arch.is_host()
        ));
    }
    hex::encode(h.finalize())
}

type Job<'a> = (String, Box<dyn FnOnce() -> Result<(), String> + Send + 'a>);

fn build_all(layout: &Layout) -> Result<(), String> {
    let buildable: Vec<&'static Arch> = toolchain_rows()
        .filter(|a| demo::missing_toolchain(a).is_none())
        .collect();
    let can = |arch: &'static Arch| buildable.contains(&arch);
    let hello_c = hello_c_path();
    let mut jobs: Vec<Job<'_>> = Vec::new();

    for &arch in &buildable {
        jobs.push((
            format!("hello for {}", arch.key()),
            Box::new(move || {
                demo::build_hello_with(arch, &[], &layout.hello(arch)).map_err(|e| e.to_string())
            }),
        ));
        jobs.push((
            format!("nix closure for {}", arch.key()),
            Box::new(move || build_nix(layout, arch)),
        ));
    }

    let aarch64 = row("aarch64-linux");
    if can(aarch64) {
        let x86_64_loader = row("x86_64-linux").glibc_loader;
        jobs.push((
            "broken/wrong-loader".into(),
            Box::new(move || {
                with_loader(aarch64, x86_64_loader, &layout.broken_bin("wrong-loader"))
            }),
        ));
    }
    let armel = row("armv5tel-linux");
    if can(armel) {
        let armhf_loader = row("armv7l-linux").glibc_loader;
        jobs.push((
            "broken/softfloat-hf-loader".into(),
            Box::new(move || {
                with_loader(
                    armel,
                    armhf_loader,
                    &layout.broken_bin("softfloat-hf-loader"),
                )
            }),
        ));
    }

    let host = host_row();
    if demo::missing_musl_toolchain(host).is_none() {
        for (kind, args) in [("dynamic", &[][..]), ("static", &["-static"][..])] {
            let source = hello_c.clone();
            jobs.push((
                format!("musl/{kind}"),
                Box::new(move || {
                    demo::build_c_musl(host, &source, &[], args, &layout.musl(kind))
                        .map_err(|e| e.to_string())
                }),
            ));
        }
    }

    for (arch, claimed) in misbehaving_rows() {
        if can(arch) {
            let source = hello_c.clone();
            jobs.push((
                format!("misbehaving for {}", arch.key()),
                Box::new(move || build_misbehaving(layout, arch, claimed, &source)),
            ));
        }
    }

    for name in SYSROOT_ROWS {
        let arch = row(name);
        if demo::sysroot_loader(arch).is_some() {
            jobs.push((
                format!("sysroot for {}", arch.key()),
                Box::new(move || build_sysroot(layout, arch)),
            ));
        }
    }

    let mut errors = run_parallel(jobs);
    if errors.is_empty() {
        // Derived fixtures: copies and cuts of what phase one built.
        for (what, result) in [
            ("broken/not-elf", write_not_elf(layout)),
            ("broken/truncated", write_truncated(layout, aarch64)),
            (
                "broken/mixed-closure",
                write_mixed_closure(layout, aarch64, host),
            ),
            (
                "broken/missing-loader",
                write_missing_loader(layout, aarch64),
            ),
        ] {
            if let Err(e) = result {
                errors.push(format!("{what}: {e}"));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n\n"))
    }
}

/// Run jobs on every core; returns the failures as `label: error`.
fn run_parallel(jobs: Vec<Job<'_>>) -> Vec<String> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, jobs.len().max(1));
    let queue = Mutex::new(jobs.into_iter());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some((label, job)) = next else { break };
                    if let Err(e) = job() {
                        errors.lock().unwrap().push(format!("{label}: {e}"));
                    }
                }
            });
        }
    });
    errors.into_inner().unwrap()
}

fn hello_c_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/hello.c")
}

fn with_loader(arch: &Arch, loader: &str, out: &Path) -> Result<(), String> {
    demo::build_hello_with(arch, &[&format!("-Wl,--dynamic-linker={loader}")], out)
        .map_err(|e| e.to_string())
}

/// Store names of a row's closure: `<h>-glibc-<triple>-2.36` and
/// `<h>-multi-arch-demo-<triple>-1.0.0`; native (host) builds carry no triple.
fn store_names(arch: &Arch) -> (String, String) {
    let (glibc, demo) = if arch.is_host() {
        (
            "glibc-2.36".to_string(),
            "multi-arch-demo-1.0.0".to_string(),
        )
    } else {
        let triple = arch.glibc_triples[0];
        (
            format!("glibc-{triple}-2.36"),
            format!("multi-arch-demo-{triple}-1.0.0"),
        )
    };
    (
        format!("{}-{glibc}", store_hash(&glibc)),
        format!("{}-{demo}", store_hash(&demo)),
    )
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The paths of a row's closure below `root` (whether or not they exist).
fn closure_at(arch: &'static Arch, root: PathBuf) -> NixClosure {
    let (glibc, demo_out) = store_names(arch);
    let store = root.join("nix/store");
    let out = store.join(&demo_out);
    NixClosure {
        arch,
        bin: out.join("bin").join(DEMO_NAME),
        result: root.join("result"),
        loader: format!("/nix/store/{glibc}/lib/{}", file_name(arch.glibc_loader)),
        glibc_lib: store.join(&glibc).join("lib"),
        out,
        root,
    }
}

fn build_nix(layout: &Layout, arch: &'static Arch) -> Result<(), String> {
    let c = closure_at(arch, layout.nix_root(arch));
    let rpath = c.glibc_lib_guest();
    demo::build_hello_with(
        arch,
        &[
            &format!("-Wl,--dynamic-linker={}", c.loader),
            "-Wl,--enable-new-dtags",
            &format!("-Wl,-rpath,{rpath}"),
        ],
        &c.bin,
    )
    .map_err(|e| e.to_string())?;
    copy_glibc(arch, &c.bin, &c.glibc_lib)?;
    let target = c.out.strip_prefix(&c.root).expect("output inside the root");
    symlink(target, &c.result).map_err(io_err("link", &c.result))
}

/// Copy the row's loader, [`BASE_LIBRARIES`] and every transitive DT_NEEDED of `bin` from
/// the sysroot into `dest`, as real files.
fn copy_glibc(arch: &Arch, bin: &Path, dest: &Path) -> Result<(), String> {
    let dirs = demo::sysroot_lib_dirs(arch);
    let loader =
        demo::sysroot_loader(arch).ok_or_else(|| format!("no glibc loader in {dirs:?}"))?;
    let loader_name = file_name(arch.glibc_loader).to_string();
    fs::create_dir_all(dest).map_err(io_err("create", dest))?;
    fs::copy(&loader, dest.join(&loader_name)).map_err(io_err("copy", &loader))?;

    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    let mut done: HashSet<String> = HashSet::from([loader_name]);
    let mut queue: VecDeque<String> = needed_of(bin)?.into();
    queue.extend(
        BASE_LIBRARIES
            .iter()
            .filter(|n| find(n).is_some())
            .map(|n| n.to_string()),
    );
    while let Some(name) = queue.pop_front() {
        if !done.insert(name.clone()) {
            continue;
        }
        let src =
            find(&name).ok_or_else(|| format!("{name} (DT_NEEDED) is in none of {dirs:?}"))?;
        let dst = dest.join(&name);
        fs::copy(&src, &dst).map_err(io_err("copy", &src))?;
        queue.extend(needed_of(&dst)?);
    }
    Ok(())
}

fn needed_of(path: &Path) -> Result<Vec<String>, String> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    Ok(inspect_bytes(&bytes)
        .elf()
        .map(|e| e.needed.clone())
        .unwrap_or_default())
}

/// The host row and aarch64, each paired with the row whose hello its liar prints.
fn misbehaving_rows() -> Vec<(&'static Arch, &'static Arch)> {
    let host = host_row();
    let aarch64 = row("aarch64-linux");
    if host == aarch64 {
        vec![(host, row("x86_64-linux"))]
    } else {
        vec![(host, aarch64), (aarch64, host)]
    }
}

fn build_misbehaving(
    layout: &Layout,
    arch: &Arch,
    claimed: &Arch,
    source: &Path,
) -> Result<(), String> {
    let claimed_hello = demo::c_string_literal(claimed.rust_arch);
    let variants: [(&str, Vec<(&str, &str)>); 4] = [
        (
            "wrong-arch-output",
            vec![("MAB_ARCH", claimed_hello.as_str())],
        ),
        ("exit-one", vec![Behaviour::ExitOne.define()]),
        ("sleeper", vec![Behaviour::Sleeper.define()]),
        ("flood", vec![Behaviour::Flood.define()]),
    ];
    for (name, defines) in variants {
        demo::build_c(arch, source, &defines, &[], &layout.misbehaving(arch, name))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `sysroots/<key>/lib/<gcc_triple>/` holds the sysroot's shared libraries; the loader's
/// standard path is an absolute symlink to `/lib/<gcc_triple>/<loader>`.
fn build_sysroot(layout: &Layout, arch: &'static Arch) -> Result<(), String> {
    let s = sysroot_at(arch, layout.sysroot(arch));
    fs::create_dir_all(&s.lib_dir).map_err(io_err("create", &s.lib_dir))?;
    for dir in demo::sysroot_lib_dirs(arch) {
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Shared objects only; sanitizer runtimes are large and irrelevant here.
            let dst = s.lib_dir.join(&name);
            // The first directory wins, as in the loader's search.
            if !name.contains(".so")
                || name.contains("san.so")
                || fs::symlink_metadata(&dst).is_ok()
            {
                continue;
            }
            let src = entry.path();
            match fs::read_link(&src) {
                // Links within the directory stay links; others would dangle in the copy.
                Ok(target) if target.components().count() == 1 => {
                    symlink(target, &dst).map_err(io_err("link", &dst))?
                }
                _ => drop(fs::copy(&src, &dst).map_err(io_err("copy", &src))?),
            }
        }
    }
    let parent = s.loader_link.parent().expect("loader link has a parent");
    fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    let tc = arch.toolchain.expect("sysroot rows have a toolchain");
    let target = format!("/lib/{}/{}", tc.gcc_triple, file_name(arch.glibc_loader));
    symlink(target, &s.loader_link).map_err(io_err("link", &s.loader_link))
}

fn sysroot_at(arch: &'static Arch, dir: PathBuf) -> Sysroot {
    let tc = arch.toolchain.expect("sysroot rows have a toolchain");
    Sysroot {
        arch,
        lib_dir: dir.join("lib").join(tc.gcc_triple),
        loader_link: dir.join(arch.glibc_loader.trim_start_matches('/')),
        dir,
    }
}

fn write_not_elf(layout: &Layout) -> Result<(), String> {
    let path = layout.broken_bin("not-elf");
    let parent = path.parent().expect("fixture has a parent");
    fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    let script = format!(
        "#!/bin/sh\necho 'Hello from linux/{}!'\n",
        host_row().rust_arch
    );
    fs::write(&path, script).map_err(io_err("write", &path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", &path))
}

fn write_truncated(layout: &Layout, arch: &Arch) -> Result<(), String> {
    let hello = layout.hello(arch);
    if !hello.exists() {
        return Ok(());
    }
    let bytes = fs::read(&hello).map_err(io_err("read", &hello))?;
    let path = layout.broken_bin("truncated");
    let parent = path.parent().expect("fixture has a parent");
    fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    fs::write(&path, &bytes[..bytes.len() / 3]).map_err(io_err("write", &path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", &path))
}

fn write_mixed_closure(layout: &Layout, arch: &'static Arch, host: &Arch) -> Result<(), String> {
    let original = layout.nix_root(arch);
    if !original.exists() {
        return Ok(());
    }
    let copy = closure_at(arch, layout.broken("mixed-closure"));
    copy_tree(&original, &copy.root)?;
    let name = "libgcc_s.so.1";
    let dirs = demo::sysroot_lib_dirs(host);
    let foreign = dirs
        .iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("the host's {name} is in none of {dirs:?}"))?;
    let victim = copy.glibc_lib.join(name);
    fs::remove_file(&victim).map_err(io_err("remove", &victim))?;
    fs::copy(&foreign, &victim).map_err(io_err("copy", &foreign))?;
    Ok(())
}

fn write_missing_loader(layout: &Layout, arch: &'static Arch) -> Result<(), String> {
    let original = layout.nix_root(arch);
    if !original.exists() {
        return Ok(());
    }
    let copy = closure_at(arch, layout.broken("missing-loader"));
    copy_tree(&original, &copy.root)?;
    let loader = copy.loader_host();
    fs::remove_file(&loader).map_err(io_err("remove", &loader))
}

/// Copy a directory tree; symlinks are recreated as they are (relative stays relative).
fn copy_tree(src: &Path, dst: &Path) -> Result<(), String> {
    fs::create_dir_all(dst).map_err(io_err("create", dst))?;
    for entry in fs::read_dir(src).map_err(io_err("list", src))? {
        let entry = entry.map_err(io_err("list", src))?;
        let to = dst.join(entry.file_name());
        if entry
            .file_type()
            .map_err(io_err("stat", &entry.path()))?
            .is_dir()
        {
            copy_tree(&entry.path(), &to)?;
        } else {
            copy_entry(&entry.path(), &to)?;
        }
    }
    Ok(())
}

/// Copy a file, or recreate a symlink with the same target.
fn copy_entry(src: &Path, dst: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(src).map_err(io_err("stat", src))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(io_err("read link", src))?;
        symlink(target, dst).map_err(io_err("link", dst))
    } else {
        fs::copy(src, dst).map(drop).map_err(io_err("copy", src))
    }
}

fn io_err<'a>(action: &'a str, path: &'a Path) -> impl FnOnce(std::io::Error) -> String + 'a {
    move |e| format!("cannot {action} {}: {e}", path.display())
}

/// What exists below the layout, as `Fixtures`.
fn scan(layout: &Layout) -> Fixtures {
    let present = |p: &Path| fs::symlink_metadata(p).is_ok();
    let file = |p: PathBuf| present(&p).then_some(p);
    let aarch64 = row("aarch64-linux");
    let closure_if_present = |root: PathBuf| {
        let c = closure_at(aarch64, root);
        present(&c.bin).then_some(c)
    };
    Fixtures {
        dir: layout.dir.clone(),
        hello: ARCHES
            .iter()
            .map(|a| (a, layout.hello(a)))
            .filter(|(_, p)| present(p))
            .collect(),
        musl_dynamic: file(layout.musl("dynamic")),
        musl_static: file(layout.musl("static")),
        nix: ARCHES
            .iter()
            .filter(|a| a.toolchain.is_some())
            .map(|a| closure_at(a, layout.nix_root(a)))
            .filter(|c| present(&c.bin))
            .collect(),
        broken: Broken {
            wrong_loader: file(layout.broken_bin("wrong-loader")),
            softfloat_hf_loader: file(layout.broken_bin("softfloat-hf-loader")),
            mixed_closure: closure_if_present(layout.broken("mixed-closure")),
            missing_loader: closure_if_present(layout.broken("missing-loader")),
            truncated: file(layout.broken_bin("truncated")),
            not_elf: file(layout.broken_bin("not-elf")),
        },
        misbehaving: misbehaving_rows()
            .into_iter()
            .map(|(arch, claimed_arch)| Misbehaving {
                arch,
                claimed_arch,
                wrong_arch_output: layout.misbehaving(arch, "wrong-arch-output"),
                exit_one: layout.misbehaving(arch, "exit-one"),
                sleeper: layout.misbehaving(arch, "sleeper"),
                flood: layout.misbehaving(arch, "flood"),
            })
            .filter(|m| {
                [&m.wrong_arch_output, &m.exit_one, &m.sleeper, &m.flood]
                    .iter()
                    .all(|p| present(p))
            })
            .collect(),
        sysroots: SYSROOT_ROWS
            .iter()
            .map(|name| row(name))
            .map(|a| sysroot_at(a, layout.sysroot(a)))
            .filter(|s| present(&s.loader_link))
            .collect(),
        missing: ARCHES
            .iter()
            .filter_map(|a| demo::missing_toolchain(a).map(|reason| (a, reason)))
            .collect(),
    }
}
