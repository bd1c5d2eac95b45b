//! Running DDL items on several sessions at once, each item as soon as everything it depends on
//! has run. Dependencies on items outside the given set count as already satisfied (they ran in
//! an earlier phase).

use std::collections::{HashMap, VecDeque};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use pgark_archive::DdlItem;
use pgark_pg::Connection;

use crate::{EngineError, session};

pub(super) async fn run_items(
    sessions: &[Connection],
    items: &[&DdlItem],
) -> Result<(), EngineError> {
    if sessions.is_empty() {
        return Err(EngineError::Internal("no session to run DDL on".into()));
    }
    let position: HashMap<u32, usize> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.id, i))
        .collect();
    let mut waiting_on = vec![0usize; items.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    for (i, item) in items.iter().enumerate() {
        for dep in &item.deps {
            if let Some(&d) = position.get(dep) {
                waiting_on[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..items.len()).filter(|&i| waiting_on[i] == 0).collect();
    let mut idle: Vec<usize> = (0..sessions.len()).rev().collect();
    let mut running = FuturesUnordered::new();
    let mut finished = 0;

    loop {
        while let (Some(_), Some(_)) = (ready.front(), idle.last()) {
            let (Some(i), Some(s)) = (ready.pop_front(), idle.pop()) else {
                break;
            };
            let item = items[i];
            let connection = &sessions[s];
            running.push(async move {
                session::execute(connection, &item.sql, || {
                    format!("running {}", super::describe(item))
                })
                .await
                .map(|()| (i, s))
            });
        }
        let Some(result) = running.next().await else {
            break;
        };
        let (i, s) = result?;
        idle.push(s);
        finished += 1;
        for &d in &dependents[i] {
            waiting_on[d] -= 1;
            if waiting_on[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    if finished != items.len() {
        return Err(EngineError::Internal(format!(
            "{} schema items could not run because their dependencies form a cycle",
            items.len() - finished
        )));
    }
    Ok(())
}
