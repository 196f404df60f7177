extension AppView {
    /// The right panel's tab (and the CAR panel's part) by name, for scripted
    /// screenshots (`cnnslicer screenshot --select tab=car-curve`). False for an unknown name.
    public func showPanel(named name: String) -> Bool {
        let tabs = ["matrix": (0, 0), "car": (1, 0), "car-curve": (1, 1), "car-results": (1, 2), "scatter": (2, 0)]
        guard let (index, section) = tabs[name] else { return false }
        rightTab = index
        if index == 1 { carPanel.section = section }
        return true
    }
}
