//! The owner's inbox, read from the phone: the mail each alias received, with its codes and
//! links pulled out, and one message at a time as plain text.
//!
//! Headers come from the breach monitor's sweeps ([`index`]); a body is fetched from IMAP only
//! when asked (`BODY.PEEK`, so it stays unread, with a byte cap), turned into text
//! ([`render`], [`html`]), searched ([`extract`]), cut into pages a Signal message holds
//! ([`pages`]), and dropped: nothing of it is stored or logged. Nothing in a mail is ever
//! followed: no link opened, no image loaded.

pub mod extract;
pub mod html;
pub mod index;
pub mod pages;
pub mod render;
