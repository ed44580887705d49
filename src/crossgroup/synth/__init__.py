"""crossgroup.synth"""
