"""VoipNow's UAPI: wire types, the client, and the emulator (a stand-in VoipNow server)."""
