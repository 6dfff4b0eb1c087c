//! Tokens and initial data sequence numbers from MPTCP keys (RFC 6824 §3.1, RFC 8684 §3.1).

use sha1::{Digest, Sha1};
use sha2::Sha256;

/// What a connection derives from one side's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyMaterial {
    /// Identifies the connection towards this key's owner: an MP_JOIN SYN sent to the key's
    /// owner carries it.
    pub token: u32,
    /// Initial data sequence number of the data the key's owner sends.
    pub idsn: u64,
}

/// Token and IDSN of a key: hash the 8-byte big-endian key with SHA-1 (version 0, RFC 6824) or
/// SHA-256 (version 1 and later, RFC 8684); the token is the hash's first 4 bytes, the IDSN its
/// last 8 bytes, both read big-endian.
pub fn key_material(version: u8, key: u64) -> KeyMaterial {
    let bytes = key.to_be_bytes();
    if version == 0 {
        from_hash(&Sha1::digest(bytes))
    } else {
        from_hash(&Sha256::digest(bytes))
    }
}

fn from_hash(hash: &[u8]) -> KeyMaterial {
    let mut token = [0u8; 4];
    token.copy_from_slice(&hash[..4]);
    let mut idsn = [0u8; 8];
    idsn.copy_from_slice(&hash[hash.len() - 8..]);
    KeyMaterial {
        token: u32::from_be_bytes(token),
        idsn: u64::from_be_bytes(idsn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Truth from tshark 4.0 on /work/shared/pcaps/client_2.pcap:
    /// `tshark -r client_2.pcap -Y 'tcp.options.mptcp.subtype==0 && tcp.flags.syn==1' -T fields
    ///  -e frame.number -e tcp.options.mptcp.sendkey -e mptcp.expected_token -e mptcp.expected_idsn`
    #[test]
    fn v0_matches_tshark() {
        // frame 2 (SYN, stream 0)
        assert_eq!(
            key_material(0, 14568871653868829995),
            KeyMaterial {
                token: 2280993044,
                idsn: 5947950023132234492
            }
        );
        // frame 5 (SYN/ACK, stream 0)
        assert_eq!(
            key_material(0, 12070231261294881532),
            KeyMaterial {
                token: 804647408,
                idsn: 5227567736771178707
            }
        );
        // frame 29 (SYN/ACK, stream 3)
        assert_eq!(
            key_material(0, 10523733498439418338),
            KeyMaterial {
                token: 2458435933,
                idsn: 16237394477923926529
            }
        );
    }

    /// `printf '\x01\x23\x45\x67\x89\xab\xcd\xef' | sha256sum` →
    /// 55c53f5d490297900cefa825d0c8e8e9532ee8a118abe7d8570762cd38be9818
    /// token = 0x55c53f5d, IDSN = 0x570762cd38be9818.
    #[test]
    fn v1_matches_sha256sum() {
        assert_eq!(
            key_material(1, 0x0123_4567_89ab_cdef),
            KeyMaterial {
                token: 0x55c5_3f5d,
                idsn: 0x5707_62cd_38be_9818
            }
        );
        // printf '\xfe\xdc\xba\x98\x76\x54\x32\x10' | sha256sum →
        // 18f9781b1b2c2d85dc80ea6af8a7acf9bf1911a768411d39280818bf0fa7e28e
        assert_eq!(
            key_material(1, 0xfedc_ba98_7654_3210),
            KeyMaterial {
                token: 0x18f9_781b,
                idsn: 0x2808_18bf_0fa7_e28e
            }
        );
    }
}
