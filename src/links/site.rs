//! `--site-packages DIR` / `--python PATH`: link the versions a student actually installed.
//!
//! Reads `*.dist-info/METADATA` for name, version and source URLs, finds every step again in
//! the installed file by its anchor text (the exact stripped first line) inside the same
//! definition, nearest to the built-in line, and rewrites its permalink for that version on
//! the host the metadata names (GitHub, or a Gitea/Forgejo host such as code.miguelgrinberg.com).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::VersionSet;

use super::{installed_path, Section, SourceHost, Step, StepLink};

/// What to inspect.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    pub site_packages: Option<PathBuf>,
    /// An interpreter to ask for its purelib and stdlib folders and its version.
    pub python: Option<PathBuf>,
}

/// How a step was found in the installed files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    /// Same line span as in the built-in data.
    Same,
    /// The anchor moved: it was at these lines in the built-in version.
    Relocated { from_start: u32, from_end: u32 },
    /// The anchor's text is gone (a signature changed, say), but the function it was in is
    /// still there: linked to that function, which was at these lines.
    Function { from_start: u32, from_end: u32 },
    /// Not in the installed code (package missing, file missing, anchor gone).
    NotFound { reason: String },
    /// Kept as built in (CPython without `--python`).
    Builtin,
    /// The step does not hold for the installed release (its [`super::Condition`] says
    /// so): left out of what is shown.
    NotHere { reason: String },
}

/// One installed distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dist {
    pub name: String,
    pub version: String,
    /// `(label, url)`: Project-URL entries, then Home-page as `("home-page", url)`.
    pub urls: Vec<(String, String)>,
}

/// What `--site-packages` / `--python` found.
#[derive(Debug, Clone)]
pub struct Installed {
    pub site_packages: PathBuf,
    /// `3.11.7` when an interpreter was asked.
    pub python_version: Option<String>,
    pub stdlib: Option<PathBuf>,
    /// By normalised project name (`python-socketio`).
    pub dists: HashMap<String, Dist>,
}

const PY_SCRIPT: &str = "import sys, sysconfig\n\
print(sysconfig.get_path('purelib'))\n\
print(sysconfig.get_path('stdlib'))\n\
print('%d.%d.%d' % sys.version_info[:3])\n";

/// Finds the site-packages folder (asking the interpreter if given) and reads its metadata.
pub fn inspect(opts: &SiteOptions) -> Result<Installed, crate::Error> {
    let (site_packages, stdlib, python_version) = match (&opts.site_packages, &opts.python) {
        (Some(dir), _) => (dir.clone(), None, None),
        (None, Some(py)) => {
            let out = Command::new(py)
                .args(["-I", "-c", PY_SCRIPT])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", py.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "{} failed ({}): {}",
                    py.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )
                .into());
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let (Some(pure), Some(std), Some(ver)) = (lines.next(), lines.next(), lines.next())
            else {
                return Err(format!("{} printed no sysconfig paths", py.display()).into());
            };
            (
                PathBuf::from(pure.trim()),
                Some(PathBuf::from(std.trim())),
                Some(ver.trim().to_string()),
            )
        }
        (None, None) => return Err("neither --site-packages nor --python given".into()),
    };
    if !site_packages.is_dir() {
        return Err(format!("{} is not a folder", site_packages.display()).into());
    }
    let dists = read_dists(&site_packages)?;
    Ok(Installed {
        site_packages,
        python_version,
        stdlib,
        dists,
    })
}

/// PEP 503 normalisation: lowercase, runs of `-_.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn read_dists(dir: &Path) -> Result<HashMap<String, Dist>, crate::Error> {
    let mut dists = HashMap::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().ends_with(".dist-info") {
            continue;
        }
        let Ok(bytes) = fs::read(entry.path().join("METADATA")) else {
            continue;
        };
        if let Some(d) = parse_metadata(&String::from_utf8_lossy(&bytes)) {
            dists.insert(normalize(&d.name), d);
        }
    }
    Ok(dists)
}

/// The header block of a core-metadata file (RFC 822 style, up to the first blank line).
pub fn parse_metadata(text: &str) -> Option<Dist> {
    let mut name = None;
    let mut version = None;
    let mut urls = Vec::new();
    let mut home = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(value.to_string()),
            "version" => version = Some(value.to_string()),
            "home-page" => home = Some(value.to_string()),
            "project-url" => {
                if let Some((label, url)) = value.split_once(',') {
                    urls.push((label.trim().to_ascii_lowercase(), url.trim().to_string()));
                }
            }
            _ => {}
        }
    }
    if let Some(h) = home {
        urls.push(("home-page".to_string(), h));
    }
    Some(Dist {
        name: name?,
        version: version?,
        urls,
    })
}

/// `https://HOST/OWNER/REPO...` -> (host, "OWNER/REPO").
fn split_repo_url(url: &str) -> Option<(String, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    let host = parts.next()?.to_ascii_lowercase();
    let owner = parts.next()?;
    let repo = parts.next()?;
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    Some((host, format!("{owner}/{repo}")))
}

/// Where the installed release's source is browsed: the first metadata URL (Source before
/// Repository before Homepage) whose repository name is the one of the built-in data.
pub fn source_host(dist: &Dist, data_repo: &str) -> (SourceHost, String) {
    const ORDER: &[&str] = &[
        "source",
        "source code",
        "repository",
        "code",
        "homepage",
        "home",
        "home-page",
    ];
    let want = data_repo
        .rsplit('/')
        .next()
        .unwrap_or(data_repo)
        .to_ascii_lowercase();
    let mut urls: Vec<&(String, String)> = dist.urls.iter().collect();
    urls.sort_by_key(|(label, _)| ORDER.iter().position(|o| o == label).unwrap_or(ORDER.len()));
    for (_, url) in urls {
        let Some((host, repo)) = split_repo_url(url) else {
            continue;
        };
        let name = repo
            .rsplit('/')
            .next()
            .unwrap_or(&repo)
            .to_ascii_lowercase();
        if name != want {
            continue;
        }
        if host == "github.com" || host == "www.github.com" {
            let repo = if repo.eq_ignore_ascii_case(data_repo) {
                data_repo.to_string()
            } else {
                repo
            };
            return (SourceHost::GitHub, repo);
        }
        // gevent-websocket names www.gitlab.com; GitLab itself answers on gitlab.com.
        let bare = host.strip_prefix("www.").unwrap_or(&host);
        if bare == "gitlab.com" || bare.starts_with("gitlab.") {
            return (SourceHost::GitLab(bare.to_string()), repo);
        }
        return (SourceHost::Gitea(host), repo);
    }
    (SourceHost::GitHub, data_repo.to_string())
}

/// The tag of `version`, named like the built-in tag of the same project (`v5.3.3`, `2.2.3`).
pub fn tag_for(step: &Step, version: &str) -> String {
    if step.tag == format!("v{}", step.version) {
        format!("v{version}")
    } else if step.tag == step.version {
        version.to_string()
    } else if !step.version.is_empty() && step.tag.contains(&step.version) {
        step.tag.replace(&step.version, version)
    } else {
        version.to_string()
    }
}

/// eventlet's tag of a release: `v0.35.2` and before, the bare version from 0.36.0 on.
pub fn eventlet_tag(version: &str) -> String {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if major == 0 && minor < 36 {
        format!("v{version}")
    } else {
        version.to_string()
    }
}

fn is_def(stripped: &str) -> Option<&str> {
    let rest = stripped
        .strip_prefix("async def ")
        .or_else(|| stripped.strip_prefix("def "))
        .or_else(|| stripped.strip_prefix("class "))?;
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `text` with every line that starts inside a triple-quoted string emptied (line numbers
/// kept): such a line's indentation says nothing about blocks (a message at column 0 inside
/// a function is not the function's end).
fn blank_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<&str> = None;
    for line in text.lines() {
        let starts_inside = open.is_some();
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match open {
                Some(delim) => {
                    if b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i..].starts_with(delim.as_bytes()) {
                        open = None;
                        i += 3;
                        continue;
                    }
                    i += 1;
                }
                None => match b[i] {
                    b'#' => break,
                    b'"' | b'\'' => {
                        let triple = if b[i] == b'"' { "\"\"\"" } else { "\'\'\'" };
                        if b[i..].starts_with(triple.as_bytes()) {
                            open = Some(triple);
                            i += 3;
                        } else {
                            // A one-line string: skip to its end.
                            let q = b[i];
                            i += 1;
                            while i < b.len() && b[i] != q {
                                i += if b[i] == b'\\' { 2 } else { 1 };
                            }
                            i += 1;
                        }
                    }
                    _ => i += 1,
                },
            }
        }
        if !starts_inside {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The name of the innermost `def`/`class` that contains line `idx` (the line itself when it
/// is one, or the definition a decorator line belongs to); None at module level.
fn enclosing_def<'a>(lines: &[&'a str], idx: usize) -> Option<&'a str> {
    let here = lines.get(idx)?.trim();
    if let Some(n) = is_def(here) {
        return Some(n);
    }
    if here.starts_with('@') {
        for l in lines.iter().skip(idx + 1) {
            let t = l.trim();
            if let Some(n) = is_def(t) {
                return Some(n);
            }
            if !t.starts_with('@') {
                break;
            }
        }
    }
    let mut level = indent(lines.get(idx)?);
    for l in lines[..idx].iter().rev() {
        if level == 0 {
            return None;
        }
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        // The closing line of a multi-line signature (`) -> None:`) is not a block header.
        if t.starts_with([')', ']', '}']) {
            continue;
        }
        let i = indent(l);
        if i < level {
            if let Some(n) = is_def(t) {
                return Some(n);
            }
            level = i;
        }
    }
    None
}

/// The lines (1-based, inclusive) of the definition `symbol` (`Class.method`, `function`) in
/// `text`: its `def`/`class` line, inside the definitions its qualified name names, to its last
/// indented line.
pub fn locate_function(text: &str, symbol: &str) -> Option<(u32, u32)> {
    let text = blank_strings(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut path: Vec<&str> = symbol.split('.').collect();
    let name = path.pop()?;
    let parent = path.last().copied();
    let start = (0..lines.len()).find(|&i| {
        is_def(lines[i].trim()) == Some(name) && {
            let level = indent(lines[i]);
            // The nearest less indented definition above, if any, must be the parent.
            let outer = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty() && indent(l) < level)
                .and_then(|l| is_def(l.trim()));
            match (parent, level) {
                (None, 0) => true,
                (None, _) => false,
                (Some(p), _) => outer == Some(p),
            }
        }
    })?;
    let level = indent(lines[start]);
    let mut end = start;
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        // The closing line of a multi-line signature is at the def's own indentation.
        if indent(l) <= level && !t.starts_with([')', ']', '}']) {
            break;
        }
        end = i;
    }
    Some((start as u32 + 1, end as u32 + 1))
}

/// The 1-based line where `step` now starts in `text`: a line whose stripped text is the
/// anchor, inside a definition with the step's (innermost) name, nearest to the old line.
pub fn locate(text: &str, step: &Step) -> Option<u32> {
    let text = blank_strings(text);
    let lines: Vec<&str> = text.lines().collect();
    let want = if step.symbol == "<module>" {
        None
    } else {
        Some(step.symbol.rsplit('.').next().unwrap_or(&step.symbol))
    };
    let old = i64::from(step.line_start);
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim() == step.anchor)
        .filter(|(i, _)| enclosing_def(&lines, *i) == want)
        .map(|(i, _)| i as i64 + 1)
        .min_by_key(|n| (n - old).abs())
        .and_then(|n| u32::try_from(n).ok())
}

impl Installed {
    /// The async mode python-engineio picks here when the app names none: the first of
    /// eventlet, gevent and threading that imports (python-engineio's order).
    pub fn default_async_mode(&self) -> super::AsyncMode {
        if self.dists.contains_key("eventlet") {
            super::AsyncMode::Eventlet
        } else if self.dists.contains_key("gevent") {
            super::AsyncMode::Gevent
        } else {
            super::AsyncMode::Threading
        }
    }

    /// Every link of a section rewritten for the installed versions, without the steps that
    /// do not hold for them.
    pub fn relink_section(&self, mut s: Section) -> Section {
        s.links = self.relink_all(&s.links);
        s
    }

    /// Links rewritten for the installed versions, without the steps that do not hold there.
    pub fn relink_all(&self, links: &[StepLink]) -> Vec<StepLink> {
        links
            .iter()
            .map(|l| self.relink(l.clone()))
            .filter(StepLink::applies)
            .collect()
    }

    /// Whether a step's condition holds in the installed release of its package (its own
    /// answer for the built-in release when that package is not installed).
    pub fn holds(&self, c: &super::Condition) -> bool {
        if !self.dists.contains_key(&normalize(&c.package)) {
            return c.builtin;
        }
        let text = fs::read(self.site_packages.join(&c.path))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        c.holds(text.as_deref())
    }

    /// One step, found again in the installed file.
    pub fn relink(&self, link: StepLink) -> StepLink {
        let step = &link.step;
        if let Some(c) = &step.only_if {
            if !self.holds(c) {
                let version = self
                    .dists
                    .get(&normalize(&c.package))
                    .map(|d| d.version.as_str())
                    .unwrap_or("?");
                let reason = format!("it does not hold for {} {version}", c.package);
                return StepLink {
                    status: Some(StepStatus::NotHere { reason }),
                    ..link
                };
            }
        }
        if step.package == "cpython" {
            return match (&self.python_version, &self.stdlib) {
                (Some(ver), Some(dir)) => {
                    let rel = step.path.strip_prefix("Lib/").unwrap_or(&step.path);
                    let tag = format!("v{ver}");
                    self.found(
                        &link,
                        &dir.join(rel),
                        ver,
                        &tag,
                        &SourceHost::GitHub,
                        &step.repo,
                    )
                }
                _ => StepLink {
                    status: Some(StepStatus::Builtin),
                    ..link
                },
            };
        }
        let Some(dist) = self.dists.get(&normalize(&step.package)) else {
            let reason = format!("{} is not installed", step.package);
            return not_found(link, reason);
        };
        let tag = if normalize(&step.package) == "eventlet" {
            eventlet_tag(&dist.version)
        } else {
            tag_for(step, &dist.version)
        };
        let (host, repo) = source_host(dist, &step.repo);
        let file = self.site_packages.join(installed_path(&step.path));
        self.found(&link, &file, &dist.version, &tag, &host, &repo)
    }

    fn found(
        &self,
        link: &StepLink,
        file: &Path,
        version: &str,
        tag: &str,
        host: &SourceHost,
        repo: &str,
    ) -> StepLink {
        let step = &link.step;
        let text = match fs::read(file) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => {
                return not_found(
                    link.clone(),
                    format!(
                        "{} {version} has no {}",
                        step.package,
                        installed_path(&step.path)
                    ),
                )
            }
        };
        let span = step.line_end.saturating_sub(step.line_start);
        let Some(start) = locate(&text, step) else {
            // The line changed; the function may still be there.
            let function = (step.symbol != "<module>")
                .then(|| locate_function(&text, &step.symbol))
                .flatten();
            let Some((def, last)) = function else {
                return not_found(
                    link.clone(),
                    format!(
                        "`{}` in {} is not in {} {version}",
                        step.anchor, step.symbol, step.package
                    ),
                );
            };
            // A step that began at the definition keeps its length; one inside the body now
            // spans the whole function.
            let (line_start, line_end) = if is_def(&step.anchor).is_some() {
                (def, def.saturating_add(span).min(last))
            } else {
                (def, last)
            };
            let new = Step {
                version: version.to_string(),
                tag: tag.to_string(),
                repo: repo.to_string(),
                line_start,
                line_end,
                ..step.clone()
            };
            return StepLink {
                status: Some(StepStatus::Function {
                    from_start: step.line_start,
                    from_end: step.line_end,
                }),
                ..StepLink::new(new, host, link.phase)
            };
        };
        let new = Step {
            version: version.to_string(),
            tag: tag.to_string(),
            repo: repo.to_string(),
            line_start: start,
            line_end: start.saturating_add(span),
            ..step.clone()
        };
        let status = if start == step.line_start {
            StepStatus::Same
        } else {
            StepStatus::Relocated {
                from_start: step.line_start,
                from_end: step.line_end,
            }
        };
        StepLink {
            status: Some(status),
            ..StepLink::new(new, host, link.phase)
        }
    }
}

fn not_found(link: StepLink, reason: String) -> StepLink {
    StepLink {
        url: String::new(),
        status: Some(StepStatus::NotFound { reason }),
        ..link
    }
}

/// The permalink of a line a running app executed, observed by `dispel watch`'s tracer: the
/// installed `package` at `version`, its file at `path` (relative to site-packages, or `Lib/...`
/// for the standard library), browsed where the release's metadata (`project_urls`: the
/// `Project-URL` and `Home-page` entries) says its source is, at the release's tag. The
/// repository layout (a `src/` folder) and the tag's style come from the built-in chain of the
/// same package; `None` for a package dispel knows nothing of.
pub fn observed_link(
    package: &str,
    version: &str,
    path: &str,
    line: u32,
    project_urls: &[(String, String)],
) -> Option<String> {
    let name = normalize(package);
    if name == "cpython" {
        return Some(super::permalink(
            &SourceHost::GitHub,
            "python/cpython",
            &format!("v{version}"),
            path,
            line,
            line,
        ));
    }
    // A step of the built-in data for the same package: its repository, how its files sit
    // in it, and how its tags are named.
    // Any async mode's: eventlet's and gevent's steps are not in threading's tables.
    let step = super::AsyncMode::ALL.iter().find_map(|&mode| {
        let tables = super::set_tables(super::Stack {
            set: VersionSet::Current,
            mode,
        })
        .ok()?;
        tables
            .chain
            .iter()
            .flat_map(|c| c.steps.iter())
            .find(|s| normalize(&s.package) == name)
    });
    let (repo, prefix, tag) = match step {
        Some(s) => {
            let prefix = s
                .path
                .strip_suffix(installed_path(&s.path))
                .unwrap_or("")
                .to_string();
            let tag = if name == "eventlet" {
                eventlet_tag(version)
            } else {
                tag_for(s, version)
            };
            (s.repo.clone(), prefix, tag)
        }
        None => match name.as_str() {
            "eventlet" => (
                "eventlet/eventlet".into(),
                String::new(),
                eventlet_tag(version),
            ),
            "gevent" => ("gevent/gevent".into(), "src/".into(), version.to_string()),
            // Tagged by bare version (23.0.0), the package at the repository's top.
            "gunicorn" => (
                "benoitc/gunicorn".into(),
                String::new(),
                version.to_string(),
            ),
            _ => return None,
        },
    };
    let dist = Dist {
        name: package.to_string(),
        version: version.to_string(),
        urls: project_urls.to_vec(),
    };
    let (host, repo) = source_host(&dist, &repo);
    Some(super::permalink(
        &host,
        &repo,
        &tag,
        &format!("{prefix}{path}"),
        line,
        line,
    ))
}
