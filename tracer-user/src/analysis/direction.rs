//! The two directions of a TCP stream or an MPTCP connection, and per-direction state indexed by
//! them. A TCP stream's directions are relative to its client (the SYN sender); an MPTCP
//! connection's to its initial subflow's client, whichever side opened a given subflow.

use std::ops::{Index, IndexMut};

/// From the client to the server, or back. Serialised as the JSON schema spells it. Not
/// `#[non_exhaustive]`: a stream has two directions, and callers rightly match both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    /// Both directions, client to server first: the order of every per-direction list.
    pub const BOTH: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

    /// The other direction.
    #[inline]
    pub fn flip(self) -> Self {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }

    /// This direction, or the other when `flipped`: a subflow opened by the connection's
    /// server sees the connection's directions the other way round.
    #[inline]
    pub fn flipped_if(self, flipped: bool) -> Self {
        if flipped { self.flip() } else { self }
    }

    /// The name the JSON schema uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client_to_server",
            Direction::ServerToClient => "server_to_client",
        }
    }

    #[inline]
    fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
}

/// One `T` per direction, indexed by `Direction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerDirection<T>([T; 2]);

impl<T> PerDirection<T> {
    #[cfg(test)]
    fn new(client_to_server: T, server_to_client: T) -> Self {
        Self([client_to_server, server_to_client])
    }

    /// Exchanges the two directions' values (a late SYN swapped client and server).
    pub fn swap(&mut self) {
        self.0.swap(0, 1);
    }

    /// The values with their directions, client to server first.
    pub fn iter(&self) -> impl Iterator<Item = (Direction, &T)> {
        Direction::BOTH.into_iter().zip(&self.0)
    }
}

impl<T> Index<Direction> for PerDirection<T> {
    type Output = T;

    #[inline]
    fn index(&self, direction: Direction) -> &T {
        &self.0[direction.index()]
    }
}

impl<T> IndexMut<Direction> for PerDirection<T> {
    #[inline]
    fn index_mut(&mut self, direction: Direction) -> &mut T {
        &mut self.0[direction.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_indexes_the_other_value() {
        let mut per = PerDirection::new("c2s", "s2c");
        assert_eq!(per[Direction::ClientToServer.flip()], "s2c");
        assert_eq!(per[Direction::ServerToClient.flipped_if(true)], "c2s");
        assert_eq!(per[Direction::ServerToClient.flipped_if(false)], "s2c");
        per.swap();
        let all: Vec<_> = per.iter().collect();
        assert_eq!(
            all,
            [
                (Direction::ClientToServer, &"s2c"),
                (Direction::ServerToClient, &"c2s")
            ]
        );
        assert_eq!(
            serde_json::to_string(&Direction::BOTH).expect("serialises"),
            r#"["client_to_server","server_to_client"]"#
        );
    }
}
