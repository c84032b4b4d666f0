"""The Python client and OpenFeature provider; imports no server code. (Not built yet.)"""
