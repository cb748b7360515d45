//! A child process's narration, carried to its parent through a pipe.
//!
//! A thread's narration goes through a channel ([`crate::narrated`]), but a
//! channel does not cross `fork`: the child has a copy of the parent's
//! memory, not a share of it. So while a transcript is alive, a server that
//! forks makes a pipe first ([`before_fork`]); the child writes each piece
//! of its narration to it as one line ([`Home::in_child`]), and the demo
//! reads them in the parent ([`children`], [`ChildSaid::next_said`]) and prints
//! each when the conversation makes its place certain, as for a thread.
//! Outside the demo these do nothing.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, PipeReader, PipeWriter, Read, Write};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::{Call, Ret, Said, narrating};

/// Between the fields of a line: a byte no narration contains.
const FIELD: char = '\u{1f}';

thread_local! {
    /// In a child, where its narration goes (see [`crate::redirected`]).
    pub(crate) static PIPE: RefCell<Option<PipeWriter>> =
        const { RefCell::new(None) };
    /// In a paced child (lesson 18's `beside`): where the parent says that
    /// a piece of its narration has been shown.
    static SHOWN: RefCell<Option<PipeReader>> = const { RefCell::new(None) };
}

/// Where [`Home::in_parent`] hands each child's narration: the demo's end
/// of it is [`children`].
static CHILDREN: Mutex<Option<Sender<ChildSaid>>> = Mutex::new(None);

/// Before `fork`: the pipe for the child's narration, and one on which the
/// parent tells the child to begin; nothing outside the demo.
pub struct Home {
    said: Option<(PipeReader, PipeWriter)>,
    go: Option<(PipeReader, PipeWriter)>,
}

/// The pipes for a child's narration, made before `fork`: only while a
/// transcript is alive and this thread's narration is not already going
/// elsewhere (a thread's channel, or [`crate::hushed`]).
pub fn before_fork() -> Home {
    let free = crate::OUTLET.with(|o| o.borrow().is_none());
    if !(narrating() && free) {
        return Home { said: None, go: None };
    }
    Home { said: std::io::pipe().ok(), go: std::io::pipe().ok() }
}

impl Home {
    /// In the child: from now on its narration goes to the parent. Waits
    /// first until the parent has narrated what it does after `fork`
    /// ([`Home::in_parent`]): the two processes run at once, and the kernel
    /// check reads each descriptor's calls in the order the timeline shows.
    pub fn in_child(self) {
        let (Some((reader, writer)), Some((go, told))) = (self.said, self.go)
        else {
            return;
        };
        drop((reader, told));
        // One byte, or the end of the pipe if the parent has gone.
        let _ = (&go).read(&mut [0u8]);
        PIPE.with(|p| *p.borrow_mut() = Some(writer));
        if crate::pacing() {
            // The same pipe then says when each line has been shown.
            SHOWN.with(|s| *s.borrow_mut() = Some(go));
        }
    }

    /// In the parent, once it has narrated its side of the `fork`: the
    /// child may begin, and the reading end of its narration goes to the
    /// demo ([`children`]). The parent's copy of the writing end is closed,
    /// so the demo sees the end of the pipe when the child exits.
    pub fn in_parent(self) {
        let (Some((reader, writer)), Some((go, mut told))) =
            (self.said, self.go)
        else {
            return;
        };
        drop((writer, go));
        let _ = told.write_all(b"!");
        let shown = crate::pacing().then_some(told);
        if let Ok(children) = CHILDREN.lock()
            && let Some(children) = children.as_ref()
        {
            let _ = children.send(ChildSaid(BufReader::new(reader), shown));
        }
    }
}

/// The demo's end of [`Home::in_parent`]: one [`ChildSaid`] per child
/// forked from now on, in order.
pub fn children() -> Receiver<ChildSaid> {
    let (tx, rx) = channel();
    if let Ok(mut children) = CHILDREN.lock() {
        *children = Some(tx);
    }
    rx
}

/// One child's narration, as the parent reads it, and, when paced, the
/// pipe on which the parent says it has shown a piece.
pub struct ChildSaid(BufReader<PipeReader>, Option<PipeWriter>);

impl ChildSaid {
    /// The next piece of the child's narration; `None` once the child has
    /// exited (or closed the pipe) with nothing more to say.
    pub fn next_said(&mut self) -> Option<Said> {
        let mut line = String::new();
        let said = match self.0.read_line(&mut line) {
            Ok(n) if n > 0 => from_line(line.trim_end_matches('\n'))?,
            _ => return None,
        };
        match self.1.as_ref().and_then(|shown| shown.try_clone().ok()) {
            Some(mut shown) => Some(Said::Paced(
                Box::new(said),
                crate::Shown::new(move || {
                    let _ = shown.write_all(b".");
                }),
            )),
            None => Some(said),
        }
    }
}

/// Writes `said` to this child's pipe; gives it back if there is none.
pub(crate) fn sent_home(said: Said) -> Option<Said> {
    PIPE.with(|p| match p.borrow_mut().as_mut() {
        Some(pipe) => {
            // The parent gone means nobody is listening: drop it.
            let _ = pipe.write_all((to_line(&said) + "\n").as_bytes());
            // Paced: one byte once shown, or the end of the pipe.
            SHOWN.with(|s| {
                if let Some(shown) = s.borrow_mut().as_mut() {
                    let _ = shown.read(&mut [0u8]);
                }
            });
            None
        }
        None => Some(said),
    })
}

fn to_line(said: &Said) -> String {
    let f = FIELD;
    match said {
        Said::Note(column, text) => format!("N{f}{column}{f}{text}"),
        Said::Paced(said, _) => to_line(said),
        Said::Call(c) => {
            let fd = c.fd.map_or("-".to_string(), |fd| fd.to_string());
            let ret = match &c.ret {
                None => "-".to_string(),
                Some(Ret::Fd(fd)) => format!("fd:{fd}"),
                Some(Ret::Value(v)) => v.to_string(),
                Some(Ret::Errno(name)) => name.clone(),
            };
            let shown =
                c.shown.as_deref().map_or("-".to_string(), |s| format!("={s}"));
            format!(
                "C{f}{}{f}{}{f}{fd}{f}{}{f}{ret}{f}{shown}{f}{}",
                c.column, c.name, c.args, c.detail
            )
        }
    }
}

fn from_line(line: &str) -> Option<Said> {
    let fields: Vec<&str> = line.split(FIELD).collect();
    match fields.as_slice() {
        ["N", column, text] => {
            Some(Said::Note(column.parse().ok()?, text.to_string()))
        }
        ["C", column, name, fd, args, ret, shown, detail] => {
            let ret = match *ret {
                "-" => None,
                r if r.starts_with("fd:") => {
                    Some(Ret::Fd(r[3..].parse().ok()?))
                }
                r => Some(
                    r.parse().map_or(Ret::Errno(r.to_string()), Ret::Value),
                ),
            };
            Some(Said::Call(Call {
                // A call's name is a literal in the lesson; the copy read
                // back lives as long as the demo, which is a few calls.
                name: Box::leak(name.to_string().into_boxed_str()),
                column: column.parse().ok()?,
                fd: if *fd == "-" { None } else { Some(fd.parse().ok()?) },
                args: args.to_string(),
                ret,
                shown: shown.strip_prefix('=').map(str::to_string),
                detail: detail.to_string(),
                data: None,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_and_a_note_cross_the_pipe_unchanged() {
        let call = crate::server("recv").on_fd(5).args(4096).shown("N");
        let call = call.gave(&3usize).detail("\"ab\\n\"");
        let Some(Said::Call(back)) =
            from_line(&to_line(&Said::Call(call.clone())))
        else {
            panic!("not a call")
        };
        assert_eq!(back.text(), call.text());
        assert_eq!(back.event(), call.event());
        let Some(Said::Note(1, text)) =
            from_line(&to_line(&Said::Note(1, "x y".into())))
        else {
            panic!("not a note")
        };
        assert_eq!(text, "x y");
    }
}
