guests:
