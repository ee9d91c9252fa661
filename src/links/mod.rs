//! The stage -> Python call-chain table (see `dispel links`).
//!
//! Three embedded data files (docs/links.md says how to update them):
//! - `chain-current.json` and `chain-seed.json`: per chain stage (`startup`, `ws_upgrade`...)
//!   the verified steps of one version set: file, line span, symbol, anchor text, what it does.
//! - `stage-map.json`: which steps explain each trace stage (narrowed by packet kind), and the
//!   chains of the app's entry points (`SocketIO(app)`, `@app.route`, `@socketio.on`, `emit`).
//!
//! Everything is parsed once; [`for_event`] is a hash lookup into precomputed slices.

mod render;
pub mod site;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::stage::{Kind, Stage};

pub use render::Format;
pub use site::{observed_link, Installed, SiteOptions, StepStatus};

/// One step of a chain, ready to print next to a trace event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLink {
    /// GitHub permalink, `https://github.com/REPO/blob/TAG/PATH#Lstart-Lend`.
    pub url: String,
    /// Short form for the terminal: `engineio/packet.py:64`.
    pub short: String,
    /// The step itself (package, version, path, lines, symbol, what...).
    pub step: Step,
    /// When the step comes from an entry-point chain: `registration` or `call`.
    pub phase: Option<&'static str>,
    /// With `--site-packages`/`--python`: how the step was found in the installed files.
    pub status: Option<StepStatus>,
}

/// One verified step of the call chain, as stored in the data files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// `<chain stage>.<n>`: the same logical step in every version set.
    pub step_id: String,
    pub package: String,
    pub version: String,
    /// `owner/name` on the source host.
    pub repo: String,
    pub tag: String,
    /// Path inside the repository (a wheel has it without a leading `src/`).
    pub path: String,
    pub line_start: u32,
    pub line_end: u32,
    /// Qualified name of the enclosing definition (`Server._handle_connect`, `<module>`).
    pub symbol: String,
    /// The exact stripped text of `line_start`.
    pub anchor: String,
    pub what: String,
    /// The async modes the step holds for (`threading`, `eventlet`, `gevent`); every mode
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<String>>,
    /// For a step of one async mode: the numbers of the threading steps of its stage whose
    /// place it takes. It is shown wherever a selection includes one of them, at the first
    /// listed one the selection includes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stands_for: Option<Vec<u32>>,
    /// A step that holds only for some releases of a package: where a file of it has (or
    /// lacks) a text. Installed versions are asked; the built-in set's answer is `builtin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_if: Option<Condition>,
}

/// When a step holds: a file of an installed package has, or lacks, a text, or is there at
/// all (a package installed beside the set, such as gevent-websocket, that changes which code
/// runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// The distribution whose file decides (`python-engineio`).
    pub package: String,
    /// The file, relative to site-packages (`engineio/async_drivers/_websocket_wsgi.py`).
    pub path: String,
    /// The step holds where the file has this text...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has: Option<String>,
    /// ...or where it lacks this one (a missing file lacks every text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lacks: Option<String>,
    /// ...or where the file is there (`true`) or missing (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// The async modes the condition is asked in; in the others the step holds (a step of
    /// simple-websocket holds under threading whether gevent-websocket is installed or not).
    /// Every mode when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<String>>,
    /// Whether it holds in the version set's own release of `package` (the anchor check
    /// verifies it against the wheel), or, for `exists`, with the set as installed by itself.
    pub builtin: bool,
}

impl Condition {
    /// Whether the step holds for a file of this text (`None`: no such file, which has no
    /// text and lacks every one).
    pub fn holds(&self, text: Option<&str>) -> bool {
        self.exists.is_none_or(|e| e == text.is_some())
            && self
                .has
                .as_deref()
                .is_none_or(|h| text.is_some_and(|t| t.contains(h)))
            && self
                .lacks
                .as_deref()
                .is_none_or(|l| !text.is_some_and(|t| t.contains(l)))
    }

    /// Whether the condition is asked in this async mode.
    pub fn asked_in(&self, mode: AsyncMode) -> bool {
        self.modes
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == mode.as_str()))
    }
}

impl Step {
    /// Whether the step holds in its own version set (see [`Condition`]).
    pub fn builtin_holds(&self) -> bool {
        self.only_if.as_ref().is_none_or(|c| c.builtin)
    }

    /// Whether the step holds for the server's async mode.
    pub fn holds_for(&self, mode: AsyncMode) -> bool {
        self.modes
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == mode.as_str()))
    }

    /// `N` of `<stage>.N`.
    fn number(&self) -> Option<u32> {
        self.step_id.rsplit_once('.')?.1.parse().ok()
    }
}

/// The async mode a Flask-SocketIO server runs on. The server, the WebSocket and the
/// background tasks are different code in each; Flask-SocketIO, python-socketio and
/// python-engineio's core are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum AsyncMode {
    /// Werkzeug's development server, a thread per connection (simple-websocket, wsproto).
    #[default]
    Threading,
    /// eventlet's WSGI server and WebSocket, a green thread per connection.
    Eventlet,
    /// gevent's pywsgi server, a greenlet per connection.
    Gevent,
}

impl AsyncMode {
    pub const ALL: [AsyncMode; 3] = [AsyncMode::Threading, AsyncMode::Eventlet, AsyncMode::Gevent];

    pub fn as_str(self) -> &'static str {
        match self {
            AsyncMode::Threading => "threading",
            AsyncMode::Eventlet => "eventlet",
            AsyncMode::Gevent => "gevent",
        }
    }

    /// A mode as python-engineio names it (`gevent_uwsgi` runs gevent's steps).
    pub fn parse(s: &str) -> Option<AsyncMode> {
        match s {
            "threading" => Some(AsyncMode::Threading),
            "eventlet" => Some(AsyncMode::Eventlet),
            "gevent" | "gevent_uwsgi" => Some(AsyncMode::Gevent),
            _ => None,
        }
    }
}

impl std::fmt::Display for AsyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the links point at: a version set and the async mode its server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stack {
    pub set: VersionSet,
    pub mode: AsyncMode,
}

impl From<VersionSet> for Stack {
    fn from(set: VersionSet) -> Stack {
        Stack {
            set,
            mode: AsyncMode::Threading,
        }
    }
}

/// One stage of a chain data file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChainStage {
    pub stage: String,
    pub title: String,
    pub summary: String,
    pub steps: Vec<Step>,
}

/// A titled list of links: a chain stage, a trace stage's selection or an entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `ws_upgrade`, `ws.handshake`, `eio.packet:ping` or `entry:on`.
    pub name: String,
    pub title: String,
    pub summary: String,
    pub links: Vec<StepLink>,
}

/// Where a repository's source is browsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceHost {
    /// `https://github.com/REPO/blob/TAG/PATH#Lstart-Lend`.
    GitHub,
    /// Gitea/Forgejo style: `https://HOST/REPO/src/tag/TAG/PATH#Lstart-Lend`.
    Gitea(String),
    /// GitLab style: `https://HOST/REPO/-/blob/TAG/PATH#Lstart-end`.
    GitLab(String),
}

/// The permalink of a line span. One line gives `#Lstart`, a span `#Lstart-Lend`.
pub fn permalink(
    host: &SourceHost,
    repo: &str,
    tag: &str,
    path: &str,
    start: u32,
    end: u32,
) -> String {
    let base = match host {
        SourceHost::GitHub => format!("https://github.com/{repo}/blob/{tag}/{path}"),
        SourceHost::Gitea(h) => format!("https://{h}/{repo}/src/tag/{tag}/{path}"),
        SourceHost::GitLab(h) => format!("https://{h}/{repo}/-/blob/{tag}/{path}"),
    };
    match host {
        _ if end <= start => format!("{base}#L{start}"),
        SourceHost::GitLab(_) => format!("{base}#L{start}-{end}"),
        _ => format!("{base}#L{start}-L{end}"),
    }
}

/// `flask_socketio/__init__.py:54`: the path as installed (no `src/`) and the first line.
pub fn short_form(path: &str, line: u32) -> String {
    format!("{}:{line}", installed_path(path))
}

/// A repository path as it is laid out in a wheel / site-packages.
pub fn installed_path(path: &str) -> &str {
    path.strip_prefix("src/").unwrap_or(path)
}

impl StepLink {
    /// Whether the step holds where it is linked: not one that relinking found does not
    /// apply to the installed release.
    pub fn applies(&self) -> bool {
        !matches!(self.status, Some(StepStatus::NotHere { .. }))
    }

    pub fn new(step: Step, host: &SourceHost, phase: Option<&'static str>) -> StepLink {
        StepLink {
            url: permalink(
                host,
                &step.repo,
                &step.tag,
                &step.path,
                step.line_start,
                step.line_end,
            ),
            short: short_form(&step.path, step.line_start),
            step,
            phase,
            status: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The stage map (data)

#[derive(Debug, Deserialize)]
struct StageMap {
    trace: Vec<TraceRule>,
    entries: Vec<EntryRule>,
}

#[derive(Debug, Deserialize)]
struct TraceRule {
    stage: String,
    #[serde(default)]
    kind: Option<String>,
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct EntryRule {
    name: String,
    title: String,
    summary: String,
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    chain: String,
    /// Step numbers within the chain stage; all steps when absent.
    #[serde(default)]
    steps: Option<Vec<u32>>,
    #[serde(default)]
    phase: Option<String>,
}

/// Names of the entry-point chains (`dispel links entry:on`).
pub const ENTRY_NAMES: &[&str] = &[
    "entry:socketio",
    "entry:route",
    "entry:on",
    "entry:emit",
    "entry:namespace",
    "entry:sleep",
    "entry:task",
    "entry:run",
];

/// The links of one trace stage: the default selection and the per-kind ones.
#[derive(Debug, Default)]
struct StageLinks {
    default: Vec<StepLink>,
    kinds: HashMap<Kind, Vec<StepLink>>,
}

/// Everything derived from one version set's data.
#[derive(Debug)]
pub(crate) struct SetTables {
    pub(crate) chain: Vec<ChainStage>,
    /// The links of each stage in the built-in releases.
    by_stage: HashMap<Stage, StageLinks>,
    /// With the steps that hold only in other releases too, for relinking.
    by_stage_all: HashMap<Stage, StageLinks>,
    entries: Vec<Section>,
}

/// The tables of each version set, in each async mode.
struct Tables {
    by_stack: HashMap<Stack, SetTables>,
}

const CURRENT_JSON: &str = include_str!("chain-current.json");
const SEED_JSON: &str = include_str!("chain-seed.json");
const MAP_JSON: &str = include_str!("stage-map.json");

static TABLES: OnceLock<Result<Tables, String>> = OnceLock::new();

fn tables() -> Result<&'static Tables, crate::Error> {
    match TABLES.get_or_init(load) {
        Ok(t) => Ok(t),
        Err(e) => Err(e.clone().into()),
    }
}

pub(crate) fn set_tables(stack: impl Into<Stack>) -> Result<&'static SetTables, crate::Error> {
    let stack = stack.into();
    tables()?
        .by_stack
        .get(&stack)
        .ok_or_else(|| format!("links: no tables for {stack:?}").into())
}

fn load() -> Result<Tables, String> {
    let map: StageMap =
        serde_json::from_str(MAP_JSON).map_err(|e| format!("links: stage-map.json: {e}"))?;
    let mut by_stack = HashMap::new();
    for (set, text, name) in [
        (VersionSet::Current, CURRENT_JSON, "chain-current.json"),
        (VersionSet::Seed, SEED_JSON, "chain-seed.json"),
    ] {
        let chain = parse_chain(text, name)?;
        for mode in AsyncMode::ALL {
            by_stack.insert(
                Stack { set, mode },
                build_set(in_mode(&chain, mode), &map, mode)?,
            );
        }
    }
    Ok(Tables { by_stack })
}

/// The chain as the server of one async mode runs it: each stage's steps that hold for the
/// mode, those of the mode in the places of the threading steps they stand for.
fn in_mode(chain: &[ChainStage], mode: AsyncMode) -> Vec<ChainStage> {
    chain
        .iter()
        .map(|c| ChainStage {
            steps: select_in(c, None, mode).into_iter().cloned().collect(),
            ..c.clone()
        })
        .collect()
}

fn parse_chain(text: &str, name: &str) -> Result<Vec<ChainStage>, String> {
    serde_json::from_str(text).map_err(|e| format!("links: {name}: {e}"))
}

/// The steps a part selects, in the part's order; steps absent from this set are skipped.
/// `chain` is already in one async mode ([`in_mode`]).
pub(crate) fn select<'a>(
    chain: &'a [ChainStage],
    part_chain: &str,
    steps: Option<&[u32]>,
    mode: AsyncMode,
) -> Vec<&'a Step> {
    match chain.iter().find(|s| s.stage == part_chain) {
        // Already in the mode's order.
        Some(stage) if steps.is_none() => {
            stage.steps.iter().filter(|s| s.holds_for(mode)).collect()
        }
        Some(stage) => select_in(stage, steps, mode),
        None => Vec::new(),
    }
}

/// The steps of one stage a selection of step numbers (all when `None`) shows in an async
/// mode: each numbered step that holds for the mode, and right after it the mode's steps
/// that stand for it (or for a later-listed number the selection also includes).
fn select_in<'a>(stage: &'a ChainStage, steps: Option<&[u32]>, mode: AsyncMode) -> Vec<&'a Step> {
    let all: Vec<u32>;
    let nums = match steps {
        Some(n) => n,
        None => {
            all = stage
                .steps
                .iter()
                .filter(|s| s.stands_for.is_none())
                .filter_map(Step::number)
                .collect();
            &all
        }
    };
    let mut out: Vec<&Step> = Vec::new();
    for &n in nums {
        let own = stage
            .steps
            .iter()
            .find(|s| s.stands_for.is_none() && s.number() == Some(n));
        if let Some(s) = own.filter(|s| s.holds_for(mode)) {
            if !out.iter().any(|o| std::ptr::eq(*o, s)) {
                out.push(s);
            }
        }
        for s in stage.steps.iter().filter(|s| s.holds_for(mode)) {
            let Some(sf) = &s.stands_for else { continue };
            let at = sf.iter().find(|k| nums.contains(k));
            if at == Some(&n) && !out.iter().any(|o| std::ptr::eq(*o, s)) {
                out.push(s);
            }
        }
    }
    out
}

fn phase_name(p: Option<&str>) -> Option<&'static str> {
    match p {
        Some("registration") => Some("registration"),
        Some("call") => Some("call"),
        _ => None,
    }
}

fn resolve_parts(chain: &[ChainStage], parts: &[Part], mode: AsyncMode) -> Vec<StepLink> {
    let mut out = Vec::new();
    for part in parts {
        for step in select(chain, &part.chain, part.steps.as_deref(), mode) {
            let mut step = step.clone();
            // A condition of other modes does not hold this mode's step back.
            if step.only_if.as_ref().is_some_and(|c| !c.asked_in(mode)) {
                step.only_if = None;
            }
            out.push(StepLink::new(
                step,
                &SourceHost::GitHub,
                phase_name(part.phase.as_deref()),
            ));
        }
    }
    out
}

fn build_set(chain: Vec<ChainStage>, map: &StageMap, mode: AsyncMode) -> Result<SetTables, String> {
    let mut by_stage: HashMap<Stage, StageLinks> = HashMap::new();
    let mut by_stage_all: HashMap<Stage, StageLinks> = HashMap::new();
    for rule in &map.trace {
        let stage = Stage::parse(&rule.stage).ok_or_else(|| {
            format!(
                "links: stage-map.json: unknown trace stage {:?}",
                rule.stage
            )
        })?;
        for part in &rule.parts {
            if !chain.iter().any(|c| c.stage == part.chain) {
                return Err(format!(
                    "links: stage-map.json: unknown chain stage {:?}",
                    part.chain
                ));
            }
        }
        let all = resolve_parts(&chain, &rule.parts, mode);
        let links: Vec<StepLink> = all
            .iter()
            .filter(|l| l.step.builtin_holds())
            .cloned()
            .collect();
        let kind = match &rule.kind {
            None => None,
            Some(name) => Some(
                Kind::parse(name)
                    .filter(|k| stage.kinds().contains(k))
                    .ok_or_else(|| {
                        format!(
                            "links: stage-map.json: {stage} has no kind {name:?} (it has: {})",
                            kind_names(stage)
                        )
                    })?,
            ),
        };
        for (table, links) in [(&mut by_stage, links), (&mut by_stage_all, all)] {
            let entry = table.entry(stage).or_default();
            match kind {
                None => entry.default = links,
                Some(k) => {
                    entry.kinds.insert(k, links);
                }
            }
        }
    }
    let entries = map
        .entries
        .iter()
        .map(|e| Section {
            name: e.name.clone(),
            title: e.title.clone(),
            summary: e.summary.to_string(),
            // Every step, those of other releases too: each use keeps the built-in ones or
            // asks the installed files (`Installed::relink_section`).
            links: resolve_parts(&chain, &e.parts, mode),
        })
        .collect();
    Ok(SetTables {
        chain,
        by_stage,
        by_stage_all,
        entries,
    })
}

/// The release sets the chains are written for (`--versions`). Their versions, in `--help`
/// too, are read from the chain tables, never typed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionSet {
    /// The newest releases whose tags are confirmed.
    Current,
    /// The stack of the course's sample report.
    Seed,
}

impl VersionSet {
    pub fn name(self) -> &'static str {
        match self {
            VersionSet::Current => "current",
            VersionSet::Seed => "seed",
        }
    }

    /// `Flask-SocketIO 5.6.1, python-socketio 5.16.3, python-engineio 4.13.3, Werkzeug
    /// 3.1.8`: the versions of the set's main packages, from its chain table.
    pub fn versions(self) -> String {
        let Ok(chain) = chain(self) else {
            return String::new();
        };
        let named = [
            ("flask-socketio", "Flask-SocketIO"),
            ("python-socketio", "python-socketio"),
            ("python-engineio", "python-engineio"),
            ("werkzeug", "Werkzeug"),
        ];
        named
            .iter()
            .filter_map(|(package, shown)| {
                let step = chain
                    .iter()
                    .flat_map(|c| &c.steps)
                    .find(|s| s.package == *package)?;
                Some(format!("{shown} {}", step.version))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl clap::ValueEnum for VersionSet {
    fn value_variants<'a>() -> &'a [Self] {
        &[VersionSet::Current, VersionSet::Seed]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self {
            VersionSet::Current => self.versions(),
            VersionSet::Seed => format!("the course's sample report: {}", self.versions()),
        };
        Some(clap::builder::PossibleValue::new(self.name()).help(help))
    }
}

/// Where a trace's links point: a built-in version set, or the versions installed for an
/// interpreter (`--python`/`--site-packages`), each stage and kind relinked once and kept.
/// Cheap to clone: the clones share what was relinked.
#[derive(Clone)]
pub struct Linker {
    set: VersionSet,
    /// The server's async mode; `dispel watch` learns it once the app has started, so the
    /// clones share it.
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    installed: Option<std::sync::Arc<site::Installed>>,
    #[allow(clippy::type_complexity)]
    cache: std::sync::Arc<
        std::sync::Mutex<HashMap<(AsyncMode, Stage, Option<Kind>), std::sync::Arc<[StepLink]>>>,
    >,
}

impl Linker {
    /// The built-in version set, threading mode.
    pub fn builtin(set: VersionSet) -> Linker {
        Linker {
            set,
            mode: Default::default(),
            installed: None,
            cache: Default::default(),
        }
    }

    /// The versions found installed (`set`'s steps found again in the installed files), in
    /// the async mode python-engineio picks there when the app names none.
    pub fn installed(set: VersionSet, installed: site::Installed) -> Linker {
        let linker = Linker {
            installed: Some(std::sync::Arc::new(installed)),
            ..Linker::builtin(set)
        };
        if let Some(mode) = linker
            .installed
            .as_deref()
            .map(site::Installed::default_async_mode)
        {
            linker.set_async_mode(mode);
        }
        linker
    }

    /// From the trace options: the installed versions when `--python`/`--site-packages` asks,
    /// and the async mode when `--async-mode` names one.
    pub fn from_options(
        set: VersionSet,
        python: Option<&std::path::Path>,
        site_packages: Option<&std::path::Path>,
        mode: Option<AsyncMode>,
    ) -> Result<Linker, crate::Error> {
        let linker = if python.is_none() && site_packages.is_none() {
            Linker::builtin(set)
        } else {
            let installed = site::inspect(&site::SiteOptions {
                site_packages: site_packages.map(std::path::Path::to_path_buf),
                python: python.map(std::path::Path::to_path_buf),
            })?;
            Linker::installed(set, installed)
        };
        if let Some(m) = mode {
            linker.set_async_mode(m);
        }
        Ok(linker)
    }

    pub fn set(&self) -> VersionSet {
        self.set
    }

    pub fn async_mode(&self) -> AsyncMode {
        match self.mode.load(std::sync::atomic::Ordering::Relaxed) {
            1 => AsyncMode::Eventlet,
            2 => AsyncMode::Gevent,
            _ => AsyncMode::Threading,
        }
    }

    /// From now on, this linker and its clones link the steps of `mode`.
    pub fn set_async_mode(&self, mode: AsyncMode) {
        let n = match mode {
            AsyncMode::Threading => 0,
            AsyncMode::Eventlet => 1,
            AsyncMode::Gevent => 2,
        };
        self.mode.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The version set and async mode the built-in links come from.
    pub fn stack(&self) -> Stack {
        Stack {
            set: self.set,
            mode: self.async_mode(),
        }
    }

    /// The installed versions this linker relinks to, if any.
    pub fn installed_versions(&self) -> Option<&site::Installed> {
        self.installed.as_deref()
    }

    /// [`deciding_line`], relinked to the installed files when there are some.
    pub fn deciding_line(&self, step_id: &str) -> Option<StepLink> {
        let l = deciding_line(self.stack(), step_id)?;
        Some(match &self.installed {
            Some(i) => i.relink(l),
            None => l,
        })
    }

    /// [`for_event`], relinked to the installed files when there are some. The built-in
    /// links are borrowed, never copied.
    pub fn for_event(&self, stage: Stage, kind: Option<Kind>) -> Links {
        let stack = self.stack();
        let Some(installed) = &self.installed else {
            return Links::Builtin(for_event(stack, stage, kind));
        };
        let key = (stack.mode, stage, kind);
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Links::Installed(hit);
        }
        let links: std::sync::Arc<[StepLink]> = installed
            .relink_all(for_event_all(stack, stage, kind))
            .into();
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, links.clone());
        }
        Links::Installed(links)
    }
}

/// The links of one event, as a [`Linker`] gives them.
pub enum Links {
    Builtin(&'static [StepLink]),
    Installed(std::sync::Arc<[StepLink]>),
}

impl std::ops::Deref for Links {
    type Target = [StepLink];
    fn deref(&self) -> &[StepLink] {
        match self {
            Links::Builtin(l) => l,
            Links::Installed(l) => l,
        }
    }
}

impl From<VersionSet> for Linker {
    fn from(set: VersionSet) -> Linker {
        Linker::builtin(set)
    }
}

/// The links of a trace event: its stage, narrowed by `kind` where the code path differs
/// (an Engine.IO ping is not an event dispatch). The last step is the deepest.
pub fn for_event(stack: impl Into<Stack>, stage: Stage, kind: Option<Kind>) -> &'static [StepLink] {
    let Ok(t) = set_tables(stack) else {
        return &[];
    };
    pick(&t.by_stage, stage, kind)
}

/// [`for_event`] with the steps that hold only in other releases than the built-in ones:
/// what [`site::Installed::relink_all`] sorts out for the installed ones.
pub fn for_event_all(
    stack: impl Into<Stack>,
    stage: Stage,
    kind: Option<Kind>,
) -> &'static [StepLink] {
    let Ok(t) = set_tables(stack) else {
        return &[];
    };
    pick(&t.by_stage_all, stage, kind)
}

fn pick(table: &HashMap<Stage, StageLinks>, stage: Stage, kind: Option<Kind>) -> &[StepLink] {
    let Some(links) = table.get(&stage) else {
        return &[];
    };
    if let Some(k) = kind {
        if let Some(v) = links.kinds.get(&k) {
            return v;
        }
    }
    &links.default
}

/// The line of a version set that decides a diagnosed failure: step `diagnoses.N` of the
/// chain (see `flow::diagnose`).
pub fn deciding_line(stack: impl Into<Stack>, step_id: &str) -> Option<StepLink> {
    let t = set_tables(stack).ok()?;
    let step = t
        .chain
        .iter()
        .find(|c| c.stage == "diagnoses")?
        .steps
        .iter()
        .find(|s| s.step_id == step_id)?;
    Some(StepLink::new(step.clone(), &SourceHost::GitHub, None))
}

/// One step of any chain by its id (`broadcast_emit_encode.49`), for a report that names a
/// single line no stage's chain has.
pub fn step_link(stack: impl Into<Stack>, step_id: &str) -> Option<StepLink> {
    let t = set_tables(stack).ok()?;
    let step = t
        .chain
        .iter()
        .flat_map(|c| c.steps.iter())
        .find(|s| s.step_id == step_id)?;
    Some(StepLink::new(step.clone(), &SourceHost::GitHub, None))
}

/// The whole chain of a version set, stage by stage.
pub fn chain(stack: impl Into<Stack>) -> Result<&'static [ChainStage], crate::Error> {
    Ok(&set_tables(stack)?.chain)
}

/// The chains of the app's entry points (`SocketIO(app)`, `@app.route`, `@socketio.on`,
/// `emit(..., broadcast=True)`, `socketio.run`), for a report generator.
pub fn entry_points(stack: impl Into<Stack>) -> Result<&'static [Section], crate::Error> {
    Ok(&set_tables(stack)?.entries)
}

/// One entry point by name (`entry:on`), see [`ENTRY_NAMES`], with the steps of every
/// release: [`Section::builtin`] keeps the built-in releases' ones.
pub fn entry_point(
    stack: impl Into<Stack>,
    name: &str,
) -> Result<Option<&'static Section>, crate::Error> {
    Ok(entry_points(stack)?.iter().find(|s| s.name == name))
}

impl Section {
    /// Without the steps that do not hold in the built-in releases.
    pub fn builtin(mut self) -> Section {
        self.links.retain(|l| l.step.builtin_holds());
        self
    }
}

/// Which sections `dispel links [STAGE]` prints.
pub(crate) fn sections(
    stack: impl Into<Stack>,
    stage: Option<&str>,
) -> Result<Vec<Section>, crate::Error> {
    let stack = stack.into();
    let t = set_tables(stack)?;
    let Some(name) = stage else {
        return Ok(t.chain.iter().map(chain_section).collect());
    };
    if let Some(c) = t.chain.iter().find(|c| c.stage == name) {
        return Ok(vec![chain_section(c)]);
    }
    if let Some(e) = t.entries.iter().find(|e| e.name == name) {
        return Ok(vec![e.clone()]);
    }
    let (base, kind) = match name.split_once(':') {
        Some((b, k)) => (b, Some(k)),
        None => (name, None),
    };
    if let Some(st) = Stage::parse(base) {
        let kind = kind.map(|k| Kind::parse(k).filter(|k| st.kinds().contains(k)));
        if kind != Some(None) {
            let kind = kind.flatten();
            let links = for_event_all(stack, st, kind).to_vec();
            let mut chains: Vec<&str> = Vec::new();
            for l in &links {
                let c = chain_of(&l.step.step_id);
                if !chains.contains(&c) {
                    chains.push(c);
                }
            }
            let titles: Vec<&str> = chains
                .iter()
                .filter_map(|c| t.chain.iter().find(|s| s.stage == *c))
                .map(|s| s.title.as_str())
                .collect();
            let summary = if links.is_empty() {
                "No Python code is linked to this stage.".to_string()
            } else {
                format!("Trace stage {name}: steps from {}.", chains.join(", "))
            };
            return Ok(vec![Section {
                name: name.to_string(),
                title: titles.join(" / "),
                summary,
                links,
            }]);
        }
    }
    Err(unknown_stage(name, &t.chain).into())
}

fn kind_names(stage: Stage) -> String {
    let names: Vec<&str> = stage.kinds().iter().map(|k| k.as_str()).collect();
    names.join(",")
}

fn chain_of(step_id: &str) -> &str {
    step_id.split_once('.').map(|(c, _)| c).unwrap_or(step_id)
}

fn chain_section(c: &ChainStage) -> Section {
    Section {
        name: c.stage.clone(),
        title: c.title.clone(),
        summary: c.summary.clone(),
        links: c
            .steps
            .iter()
            .map(|s| StepLink::new(s.clone(), &SourceHost::GitHub, None))
            .collect(),
    }
}

fn unknown_stage(name: &str, chain: &[ChainStage]) -> String {
    let chains: Vec<&str> = chain.iter().map(|c| c.stage.as_str()).collect();
    let trace: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    let kinds: Vec<String> = Stage::ALL
        .iter()
        .filter(|s| !s.kinds().is_empty())
        .map(|s| format!("{s}:{{{}}}", kind_names(*s)))
        .collect();
    format!(
        "unknown stage {name:?}\n  chain stages: {}\n  trace stages: {}\n  trace stage with a packet kind: {}\n  entry points: {}",
        chains.join(", "),
        trace.join(", "),
        kinds.join(" "),
        ENTRY_NAMES.join(", ")
    )
}

/// What `dispel links` was asked for.
#[derive(Debug, Clone)]
pub struct Query {
    /// A chain stage, a trace stage with an optional kind, or an entry point; all when `None`.
    pub stage: Option<String>,
    pub versions: VersionSet,
    /// The server's async mode; without one, the mode installed there (`--python`), else
    /// threading.
    pub async_mode: Option<AsyncMode>,
    pub site_packages: Option<std::path::PathBuf>,
    pub python: Option<std::path::PathBuf>,
    pub format: Format,
    pub color: bool,
}

/// Prints the chains a query names, relinked to the installed versions when it names some.
pub fn run(q: &Query) -> Result<ExitCode, crate::Error> {
    let stage = q.stage.as_deref();
    let installed = if q.site_packages.is_some() || q.python.is_some() {
        Some(site::inspect(&SiteOptions {
            site_packages: q.site_packages.clone(),
            python: q.python.clone(),
        })?)
    } else {
        None
    };
    let mode = q.async_mode.unwrap_or_else(|| {
        installed
            .as_ref()
            .map_or_else(AsyncMode::default, site::Installed::default_async_mode)
    });
    let stack = Stack {
        set: q.versions,
        mode,
    };
    let sections: Vec<Section> = sections(stack, stage)?
        .into_iter()
        .map(|mut s| match &installed {
            Some(i) => i.relink_section(s),
            // The built-in releases: without the steps of other releases.
            None => {
                s.links.retain(|l| l.step.builtin_holds());
                s
            }
        })
        .collect();
    render::print(&sections, installed.as_ref(), q.format, q.color)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;
