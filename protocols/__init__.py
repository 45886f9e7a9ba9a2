"""The contract every Yima part shares: code identity, MQTT topics and messages.

Pure Python (stdlib, cryptography, biip) so that it also runs on an Android PDA.
"""
