"""Talking to the outside world over MQTT: broker URLs, credentials, topics, the buffered publisher and
Home Assistant discovery.

Importing this package is cheap: paho-mqtt loads only when :mod:`edge_fer.outputs.mqtt.client` is imported.
"""
