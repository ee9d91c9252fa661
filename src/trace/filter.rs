//! Which events a user asked to see: `--conn`, `--stage` globs, `--quiet`.

use super::{Event, Stage};

#[derive(Debug, Clone, Default)]
pub struct Filter {
    conns: Vec<u64>,
    stages: Vec<glob::Pattern>,
    quiet: bool,
}

impl Filter {
    /// Builds a filter; a bad glob is an error naming it.
    pub fn new(conns: &[u64], stages: &[String], quiet: bool) -> Result<Filter, String> {
        let stages = stages
            .iter()
            .map(|s| glob::Pattern::new(s).map_err(|e| format!("bad --stage glob {s:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        for (pat, text) in stages.iter().zip(stages.iter().map(|p| p.as_str())) {
            if !Stage::ALL.iter().any(|s| pat.matches(s.as_str())) {
                return Err(format!(
                    "--stage {text:?} matches no stage; stages are: {}",
                    Stage::ALL.map(Stage::as_str).join(", ")
                ));
            }
        }
        Ok(Filter {
            conns: conns.to_vec(),
            stages,
            quiet,
        })
    }

    /// Cheap pre-check for producers: would any event of this stage and connection pass?
    pub fn wants(&self, stage: Stage, conn: Option<u64>) -> bool {
        if self.quiet
            && !matches!(
                stage,
                Stage::SioPacket
                    | Stage::SioDispatch
                    | Stage::SioBroadcast
                    | Stage::SioEmit
                    | Stage::SioRoom
                    | Stage::MqPublish
                    | Stage::MqMessage
                    | Stage::Error
                    | Stage::Diagnosis
            )
        {
            return false;
        }
        if !self.conns.is_empty() {
            if let Some(c) = conn {
                if !self.conns.contains(&c) {
                    return false;
                }
            }
        }
        self.stages.is_empty() || self.stages.iter().any(|p| p.matches(stage.as_str()))
    }

    pub fn accepts(&self, e: &Event) -> bool {
        self.wants(e.stage, e.conn)
    }

    /// True when every event passes (no work to do per event).
    pub fn is_everything(&self) -> bool {
        self.conns.is_empty() && self.stages.is_empty() && !self.quiet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(stage: Stage, conn: u64) -> Event {
        Event::new(stage, 0.0, Some(conn), None, String::new())
    }

    #[test]
    fn globs_conns_quiet() {
        let f = Filter::new(&[], &["sio.*".into()], false).unwrap();
        assert!(f.accepts(&ev(Stage::SioBroadcast, 1)));
        assert!(!f.accepts(&ev(Stage::WsFrame, 1)));
        let f = Filter::new(&[2], &[], false).unwrap();
        assert!(f.accepts(&ev(Stage::WsFrame, 2)));
        assert!(!f.accepts(&ev(Stage::WsFrame, 3)));
        let f = Filter::new(&[], &[], true).unwrap();
        assert!(f.accepts(&ev(Stage::SioPacket, 3)));
        assert!(f.accepts(&ev(Stage::Error, 3)));
        assert!(!f.accepts(&ev(Stage::EioPacket, 3)));
        assert!(Filter::new(&[], &["nope.*".into()], false).is_err());
        assert!(Filter::new(&[], &["[".into()], false).is_err());
    }
}
