"""A stateful emulator of Twilio's Conversations REST API that enforces the binding rules."""
