//! Sans-IO decoders.
