pub mod sns;
